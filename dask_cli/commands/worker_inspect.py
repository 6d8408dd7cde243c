"""``dask worker list|exec|stack|logs``: look at running workers from the terminal.

Each command: options -> one call of :mod:`dask_cli.debug.client.api` -> output.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from dask_cli.commands.client_options import client_options
from dask_cli.commands.param_types import TARGET
from dask_cli.debug.client.name_completion import complete_worker_name

LIST_COLUMNS = ("name", "address", "status", "threads", "memory", "tasks", "shell address")
NO_WORKERS = "The scheduler has no workers."

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
target_argument = click.argument(
    "target", metavar="NAME|ADDRESS", type=TARGET, shell_complete=complete_worker_name
)


def _memory(limit: int) -> str | None:
    if not limit:
        return None
    from dask.utils import format_bytes

    return format_bytes(limit)


@click.command("list")
@json_option
@client_options
def list_workers(settings, as_json: bool) -> None:
    """Table of the cluster's workers: name, address, status, threads, memory, tasks,
    shell address (kept-alive workers that left the cluster included)."""
    from dask_cli import output
    from dask_cli.debug.client import api

    with output.Spinner("Asking the scheduler for its workers"):
        records = asyncio.run(api.list_workers(settings))
    output.print_records(
        records,
        LIST_COLUMNS,
        _list_row,
        noun="worker",
        as_json=as_json,
        to_json=_msg,
        empty=NO_WORKERS,
    )


def _msg(r: Any) -> dict[str, Any]:
    """A ``WorkerRecord`` as ``--json`` shows it: the record the scheduler keeps."""
    return r.to_msg()


def _list_row(r: Any) -> tuple[Any, ...]:
    """A ``WorkerRecord``'s cells under ``LIST_COLUMNS``."""
    status = r.status + (f" ({r.kept_alive_reason})" if r.kept_alive_reason else "")
    return (
        r.name,
        r.address,
        status,
        r.nthreads,
        _memory(r.memory_limit),
        r.tasks,
        r.shell_address,
    )


@click.command("exec")
@click.argument(
    "targets", nargs=-1, metavar="[NAME]...", type=TARGET, shell_complete=complete_worker_name
)
@click.option("--all", "all_workers", is_flag=True, help="Run on every worker.")
@click.option("-c", "code", required=True, metavar="CODE", help="Code to run on each worker.")
@click.option(
    "--group", is_flag=True, help="One block of output per worker instead of prefixed lines."
)
@json_option
@client_options
@click.pass_context
def exec_code(
    ctx: click.Context,
    settings,
    targets: tuple[str, ...],
    all_workers: bool,
    code: str,
    group: bool,
    as_json: bool,
) -> None:
    """Run CODE on the named workers (or --all) at once.

    Each worker's output lines appear as they come, prefixed by its name; a summary
    of the failures comes last. --group prints one block per worker, --json one
    record per worker. Exit status 1 if the code raised on any worker."""
    from dask_cli import output
    from dask_cli.debug.client import api

    if bool(targets) == all_workers:
        raise click.UsageError("Name the workers, or pass --all (not both).", ctx)
    view = output.ExecView("json" if as_json else "group" if group else "stream")
    try:
        outcomes = asyncio.run(
            api.exec_on_workers(settings, None if all_workers else list(targets), code, view)
        )
    finally:
        view.close()
    ctx.exit(1 if any(o.failed for o in outcomes) else 0)


@click.command()
@target_argument
@json_option
@client_options
def stack(settings, target: str, as_json: bool) -> None:
    """Stack of every thread in the worker, marking the threads that run tasks.

    Answers while the worker's event loop is blocked (the shell service has its own
    thread)."""
    from dask_cli import output
    from dask_cli.debug.client import api

    with output.Spinner(f"Connecting to {target}"):
        found = asyncio.run(api.stacks(settings, target))
    if as_json:
        output.print_json(found.to_dict())
    else:
        output.print_lines([found.text])


@click.command()
@target_argument
@click.option(
    "-n", "n", type=click.IntRange(min=0), default=100, show_default=True, help="Number of lines."
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they are logged.")
@json_option
@client_options
def logs(settings, target: str, n: int, follow: bool, as_json: bool) -> None:
    """The worker's recent log lines (distributed keeps the last ones in memory).

    With -f, keep printing new lines until Ctrl-C. With --json: one record, or with
    -f one record per line."""
    from dask_cli import output
    from dask_cli.debug.client import api

    if not follow:
        with output.Spinner(f"Connecting to {target}"):
            found = asyncio.run(api.logs(settings, target, n))
        if as_json:
            output.print_json(found.to_dict())
        else:
            output.print_lines(found.lines)
        return

    async def follow_lines() -> None:
        async for who, lines in api.follow_logs(settings, target, n):
            if as_json:
                for line in lines:
                    output.print_json_line({"worker": who.name, "line": line})
            else:
                output.print_lines(lines)

    try:
        asyncio.run(follow_lines())
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # Ctrl-C ends a follow, as with `tail -f`
