"""``dask worker list|exec|stack|logs``: look at running workers from the terminal."""

from __future__ import annotations

import asyncio
import sys

import click

from dask_cli.commands.client_options import client_options
from dask_cli.debug.client.name_completion import complete_worker_name

LIST_COLUMNS = ("name", "address", "status", "threads", "memory", "tasks", "shell address")


def _memory(limit: int) -> str | None:
    if not limit:
        return None
    from dask.utils import format_bytes

    return format_bytes(limit)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@client_options
def list_workers(settings, as_json: bool) -> None:
    """Table of the cluster's workers: name, address, status, threads, memory, tasks,
    shell address (kept-alive workers that left the cluster included)."""
    from dask_cli import output
    from dask_cli.debug.client.resolve import list_workers as fetch

    records = asyncio.run(fetch(settings))
    if as_json:
        output.print_json([r.to_msg() for r in records])
        return
    rows = [
        (
            r.name,
            r.address,
            r.status + (f" ({r.kept_alive_reason})" if r.kept_alive_reason else ""),
            r.nthreads,
            _memory(r.memory_limit),
            r.tasks,
            r.shell_address,
        )
        for r in records
    ]
    output.print_table(LIST_COLUMNS, rows, title=f"{len(rows)} workers")


@click.command("exec")
@click.argument("targets", nargs=-1, metavar="[NAME]...", shell_complete=complete_worker_name)
@click.option("--all", "all_workers", is_flag=True, help="Run on every worker.")
@click.option("-c", "code", required=True, metavar="CODE", help="Code to run on each worker.")
@client_options
@click.pass_context
def exec_code(
    ctx: click.Context, settings, targets: tuple[str, ...], all_workers: bool, code: str
) -> None:
    """Run CODE on the named workers (or --all) at once; print each worker's output
    under a header. Exit status 1 if it raised on any worker."""
    from dask_cli import output
    from dask_cli.debug.client.runner import exec_on_workers
    from dask_cli.errors import DaskCliError

    if bool(targets) == all_workers:
        raise DaskCliError(
            "Name workers or pass --all (not both)", hint="dask worker exec --all -c CODE"
        )
    outcomes = asyncio.run(exec_on_workers(settings, None if all_workers else list(targets), code))
    for outcome in outcomes:
        status = outcome.error or outcome.status
        output.print_header(f"=== {outcome.name} ({outcome.address}): {status}", outcome.failed)
        for stream, text in outcome.chunks:
            (sys.stderr if stream == "stderr" else sys.stdout).write(text)
        if outcome.traceback:
            sys.stderr.write(outcome.traceback)
        sys.stdout.flush()
        sys.stderr.flush()
    ctx.exit(1 if any(o.failed for o in outcomes) else 0)


async def _request(settings, target: str, what: str, n: int = 0):
    from dask_cli.debug.client.connection import ShellConnection
    from dask_cli.debug.client.resolve import resolve_worker

    record = await resolve_worker(settings, target)
    conn = await ShellConnection.open(
        record.shell_address or "", settings.security(), settings.connect_timeout()
    )
    try:
        return await (conn.stacks() if what == "stacks" else conn.logs(n))
    finally:
        await conn.close()


@click.command()
@click.argument("target", metavar="NAME|ADDRESS", shell_complete=complete_worker_name)
@client_options
def stack(settings, target: str) -> None:
    """Stack of every thread in the worker, marking the threads that run tasks.

    Answers while the worker's event loop is blocked (the shell service has its own
    thread)."""
    text = asyncio.run(_request(settings, target, "stacks"))
    click.echo(text)


@click.command()
@click.argument("target", metavar="NAME|ADDRESS", shell_complete=complete_worker_name)
@click.option(
    "-n", "n", type=click.IntRange(min=1), default=100, show_default=True, help="Number of lines."
)
@client_options
def logs(settings, target: str, n: int) -> None:
    """The worker's recent log lines (distributed keeps the last ones in memory)."""
    lines = asyncio.run(_request(settings, target, "logs", n))
    click.echo("\n".join(lines))
