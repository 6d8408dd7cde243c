"""A plugin named like the built-in `info`: it must never run."""

import click


@click.command()
def info():
    click.echo("shadow info ran")
