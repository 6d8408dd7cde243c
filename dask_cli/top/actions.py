"""What the dashboard does to a worker: the same client calls as ``dask worker
stack|logs|keepalive|release``, and the argv of ``dask worker shell``.

All take the dashboard's ``ClientSettings`` and a worker address (what the
snapshot lists), so a kept-alive worker is reached directly when the scheduler
is gone.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from typing import Any


async def _open(settings: Any, target: str) -> Any:
    from dask_cli.debug.client.connection import ShellConnection
    from dask_cli.debug.client.resolve import resolve_worker

    record = await resolve_worker(settings, target)
    return await ShellConnection.open(
        record.shell_address or "", settings.security(), settings.connect_timeout()
    )


async def stack(settings: Any, target: str) -> str:
    """``dask worker stack``: every thread's stack."""
    conn = await _open(settings, target)
    try:
        return await conn.stacks()
    finally:
        await conn.close()


async def logs(settings: Any, target: str, n: int = 200) -> list[str]:
    """``dask worker logs -n N``: the worker's recent log lines."""
    conn = await _open(settings, target)
    try:
        return await conn.logs(n)
    finally:
        await conn.close()


async def toggle_keepalive(settings: Any, target: str) -> Any:
    """Switch keep-alive to the other state (``dask worker keepalive NAME on|off``);
    returns the worker's ``TargetInfo`` after the switch."""
    from dask_cli.commands.worker_keepalive import send_keepalive_request
    from dask_cli.debug import protocol

    conn = await _open(settings, target)
    try:
        enabled = not conn.target.keepalive
    finally:
        await conn.close()
    return await send_keepalive_request(
        settings, target, protocol.SetKeepalive(id=0, enabled=enabled)
    )


async def release(settings: Any, target: str) -> Any:
    """``dask worker release``: a kept-alive worker exits."""
    from dask_cli.commands.worker_keepalive import send_keepalive_request
    from dask_cli.debug import protocol

    return await send_keepalive_request(settings, target, protocol.Release(id=0))


def settings_argv(settings: Any) -> list[str]:
    """The command-line options that say what ``settings`` says (``--scheduler``,
    ``--tls-cert``...), for a ``dask`` subprocess that must reach the same cluster."""
    argv = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None and value is not False:
            argv += [f"--{f.name.replace('_', '-')}", str(value)]
    return argv


def worker_command(settings: Any, command: str, target: str) -> list[str]:
    """``dask worker COMMAND TARGET`` (``shell NAME``, ``debug KEY``) with the dashboard's
    connection options."""
    return [sys.executable, "-m", "dask_cli", "worker", command, target, *settings_argv(settings)]
