"""``dask worker``: start workers (the default), or look inside running ones.

``dask worker tcp://host:8786 [OPTIONS]`` is ``dask worker start ...``: every option
of distributed's ``dask worker``. This module must not import distributed, so that
``dask worker --help`` stays fast.
"""

import click

from dask_cli.lazy import DefaultLazyGroup, LazyCommand

SUBCOMMANDS = {
    "start": LazyCommand(
        "dask_cli.commands.worker_start:start",
        "Start workers (the default): `dask worker SCHEDULER [OPTIONS]`.",
    ),
    "shell": LazyCommand(
        "dask_cli.commands.worker_shell:shell",
        "Interactive Python shell inside a worker, by name or address.",
    ),
    "list": LazyCommand("dask_cli.commands.worker_inspect:list_workers", "Table of workers."),
    "exec": LazyCommand(
        "dask_cli.commands.worker_inspect:exec_code", "Run code on workers, output per worker."
    ),
    "stack": LazyCommand(
        "dask_cli.commands.worker_inspect:stack",
        "Stacks of every thread, also when the event loop is stuck.",
    ),
    "logs": LazyCommand("dask_cli.commands.worker_inspect:logs", "The worker's recent log lines."),
    "debug": LazyCommand(
        "dask_cli.commands.worker_debug:debug", "Attach pdb to a task paused at breakpoint()."
    ),
    "keepalive": LazyCommand(
        "dask_cli.commands.worker_keepalive:keepalive", "Switch keep-alive on a running worker."
    ),
    "release": LazyCommand(
        "dask_cli.commands.worker_keepalive:release", "Let a kept-alive worker exit."
    ),
}


@click.group(cls=DefaultLazyGroup, default_command="start", lazy_subcommands=SUBCOMMANDS)
def worker() -> None:
    """Start Dask workers, or list, inspect and shell into running ones.

    `dask worker SCHEDULER [OPTIONS]` starts workers exactly as distributed's
    `dask worker` does (see `dask worker start --help` for every option).
    """
