"""``dask worker keepalive NAME on|off`` and ``dask worker release NAME|ADDRESS``.

Both talk to the worker's own shell service (``SetKeepalive`` / ``Release``), so
they work after the scheduler died when given the worker's address (the one the
kept-alive log line prints).
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from dask_cli.commands.client_options import client_options
from dask_cli.debug.client.name_completion import complete_worker_name


async def send_keepalive_request(settings: Any, target: str, request: Any) -> Any:
    """Resolve ``target``, send ``request`` (a protocol request) to its shell service and
    return the worker's ``WorkerRecord`` after it; a failure raises ``DaskCliError``."""
    from dask_cli.debug.client.connection import ShellConnection
    from dask_cli.debug.client.resolve import resolve_worker
    from dask_cli.debug.protocol import WorkerRecord
    from dask_cli.errors import DaskCliError

    record = await resolve_worker(settings, target)
    conn = await ShellConnection.open(
        record.shell_address or "", settings.security(), settings.connect_timeout()
    )
    try:
        result = await conn.request(request)
    finally:
        await conn.close()
    if result.status != "ok":
        raise DaskCliError(result.error or f"{record.name}: request failed", hint=result.hint)
    return WorkerRecord.from_msg(result.data)


def set_keepalive(settings: Any, target: str, enabled: bool) -> Any:
    """Switch keepalive on the worker ``target``; returns its ``WorkerRecord``."""
    from dask_cli.debug import protocol

    return asyncio.run(
        send_keepalive_request(settings, target, protocol.SetKeepalive(id=0, enabled=enabled))
    )


def release_worker(settings: Any, target: str) -> Any:
    """Let the kept-alive worker ``target`` exit; returns its ``WorkerRecord`` before exit."""
    from dask_cli.debug import protocol

    return asyncio.run(send_keepalive_request(settings, target, protocol.Release(id=0)))


@click.command()
@click.argument("target", metavar="NAME|ADDRESS", shell_complete=complete_worker_name)
@click.argument("state", type=click.Choice(["on", "off"]))
@client_options
def keepalive(settings: Any, target: str, state: str) -> None:
    """Switch keep-alive on a running worker: with it on, a worker that fails (scheduler
    lost, internal error, lifetime) stays up for `dask worker shell` instead of exiting."""
    info = set_keepalive(settings, target, state == "on")
    click.echo(f"Keep-alive {state} for worker {info.name} ({info.address})")


@click.command()
@click.argument("target", metavar="NAME|ADDRESS", shell_complete=complete_worker_name)
@client_options
def release(settings: Any, target: str) -> None:
    """Let a kept-alive worker exit (its nanny exits with it)."""
    info = release_worker(settings, target)
    click.echo(f"Released worker {info.name} ({info.address}): it exits now")
