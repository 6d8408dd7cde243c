"""``dask top``: a terminal dashboard of the cluster; ``--once`` prints one snapshot."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from dask_cli.commands.client_options import client_options


@click.command()
@click.option("--once", is_flag=True, help="Print one snapshot (tables) and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: print JSON instead.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between refreshes.",
)
@client_options
@click.pass_context
def top(ctx: click.Context, settings: Any, once: bool, as_json: bool, interval: float) -> None:
    """Terminal dashboard: workers (status, kept-alive, CPU, memory, tasks), task
    progress, erred and paused tasks, the scheduler's log; open a shell, a stack or the
    logs of the selected worker. Talks to the scheduler's comm port only."""
    from dask_cli.errors import DaskCliError

    if as_json and not once:
        raise click.UsageError("--json goes with --once")
    settings.scheduler_address()  # no address at all: one line, before any screen
    if once:
        from dask_cli import output
        from dask_cli.top.poller import fetch_once
        from dask_cli.top.report import print_snapshot

        snapshot = asyncio.run(fetch_once(settings))
        if as_json:
            output.print_json(snapshot.to_dict())
        else:
            print_snapshot(snapshot)
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise DaskCliError(
            "dask top needs a terminal", hint="Use `dask top --once` (or --once --json)."
        )
    from dask_cli.top.app import run

    ctx.exit(run(settings, interval))
