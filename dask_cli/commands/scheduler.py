"""``dask scheduler``: start a scheduler (the default), or open a shell inside one.

This module must not import distributed, so that ``dask scheduler --help`` stays fast.
"""

import click

from dask_cli.lazy import DefaultLazyGroup, LazyCommand

SUBCOMMANDS = {
    "start": LazyCommand(
        "dask_cli.commands.scheduler_start:start",
        "Start a scheduler (the default): `dask scheduler [OPTIONS]`.",
    ),
    "shell": LazyCommand(
        "dask_cli.commands.scheduler_shell:shell",
        "Interactive Python shell inside the running scheduler.",
    ),
}


@click.group(cls=DefaultLazyGroup, default_command="start", lazy_subcommands=SUBCOMMANDS)
def scheduler() -> None:
    """Start a Dask scheduler, or open a shell inside a running one.

    `dask scheduler [OPTIONS]` starts a scheduler exactly as distributed's
    `dask scheduler` does (see `dask scheduler start --help` for every option).
    """
