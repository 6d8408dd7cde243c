"""A good click plugin; leaves a marker file when imported, so tests see lazy loading."""

import os
import pathlib

import click

if os.environ.get("DASK_CLI_TEST_IMPORT_MARKER"):
    pathlib.Path(os.environ["DASK_CLI_TEST_IMPORT_MARKER"]).write_text("imported")


@click.command()
@click.option("--name", default="world")
def hello(name):
    """Say hello."""
    click.echo(f"hello {name}")


@click.command()
def crash():
    """Fail with an exception dask-cli does not know."""
    raise RuntimeError("boom")
