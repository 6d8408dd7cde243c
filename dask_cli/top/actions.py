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


async def stack(settings: Any, target: str) -> str:
    """``dask worker stack``: every thread's stack."""
    from dask_cli.debug.client import api

    return (await api.stacks(settings, target)).text


async def logs(settings: Any, target: str, n: int = 200) -> list[str]:
    """``dask worker logs -n N``: the worker's recent log lines."""
    from dask_cli.debug.client import api

    return (await api.logs(settings, target, n)).lines


async def toggle_keepalive(settings: Any, target: str) -> Any:
    """Switch keep-alive to the other state (``dask worker keepalive NAME on|off``);
    returns the worker's ``WorkerRecord`` after the switch."""
    from dask_cli.debug.client import api

    conn = await api.open_shell(settings, target)
    try:
        enabled = not conn.target.keepalive
    finally:
        await conn.close()
    return await api.set_keepalive(settings, target, enabled)


async def release(settings: Any, target: str) -> Any:
    """``dask worker release``: a kept-alive worker exits."""
    from dask_cli.debug.client import api

    return await api.release(settings, target)


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
