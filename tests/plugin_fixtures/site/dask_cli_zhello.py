"""A second package providing `hello`: it loses to dask-cli-hello (sorted first)."""

import click


@click.command()
def hello():
    click.echo("zhello ran")
