"""``dask worker keepalive NAME on|off`` and ``dask worker release NAME|ADDRESS``.

Both talk to the worker's own shell service, so they work after the scheduler died
when given the worker's address (the one the kept-alive log line prints).
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from dask_cli.commands.client_options import client_options
from dask_cli.commands.param_types import TARGET
from dask_cli.debug.client.name_completion import complete_worker_name

target_argument = click.argument(
    "target", metavar="NAME|ADDRESS", type=TARGET, shell_complete=complete_worker_name
)


@click.command()
@target_argument
@click.argument("state", type=click.Choice(["on", "off"]))
@client_options
def keepalive(settings: Any, target: str, state: str) -> None:
    """Switch keep-alive on a running worker: with it on, a worker that fails (scheduler
    lost, internal error, lifetime) stays up for `dask worker shell` instead of exiting."""
    from dask_cli import output
    from dask_cli.debug.client import api

    with output.Spinner(f"Connecting to {target}"):
        info = asyncio.run(api.set_keepalive(settings, target, state == "on"))
    click.echo(f"Keep-alive {state} for worker {info.name} ({info.address})")


@click.command()
@target_argument
@client_options
def release(settings: Any, target: str) -> None:
    """Let a kept-alive worker exit (its nanny exits with it)."""
    from dask_cli import output
    from dask_cli.debug.client import api

    with output.Spinner(f"Connecting to {target}"):
        info = asyncio.run(api.release(settings, target))
    click.echo(f"Released worker {info.name} ({info.address}): it exits now")
