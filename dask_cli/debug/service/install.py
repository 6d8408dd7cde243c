"""What the ``dask_cli.debug`` preload installs, by kind of server.

It must never take the server down: a failure is logged and the server goes on
without the shell.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("dask_cli.debug.service")


async def install(server: Any) -> None:
    """Install the dask-cli plugins into ``server`` (Worker, Nanny or Scheduler)."""
    try:
        from distributed import Nanny, Scheduler, Worker

        if isinstance(server, Worker):
            from dask_cli.debug.service.plugin import ShellWorkerPlugin

            await server.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
            install_keepalive(server)
        elif isinstance(server, Nanny):
            await install_nanny(server)
        elif isinstance(server, Scheduler):
            from dask_cli.debug.service.plugin import ShellSchedulerPlugin

            server.add_plugin(ShellSchedulerPlugin(), idempotent=True)
        else:
            logger.warning("dask_cli.debug: nothing to install in a %s", type(server).__name__)
    except Exception:
        logger.exception("dask_cli.debug: could not install the shell/keepalive plugins")


async def install_nanny(nanny: Any) -> None:
    """Hook for the nanny side (keep-alive): ``dask_cli.debug.service.nanny.install``.

    The nanny runs no shell service of its own; until that module exists, nothing
    is installed on a nanny.
    """
    try:
        from dask_cli.debug.service import nanny as nanny_module
    except ImportError:
        return
    hook = getattr(nanny_module, "install", None)
    if hook is None:
        return
    result = hook(nanny)
    if hasattr(result, "__await__"):
        await result


def install_keepalive(worker: Any) -> None:
    """Hook for keep-alive and post-mortem: ``dask_cli.debug.service.keepalive.install``
    (follows ``cli.keepalive.*``; idempotent). A failure leaves the shell working."""
    try:
        from dask_cli.debug.service import keepalive
    except ImportError:
        return
    try:
        keepalive.install(worker)
    except Exception:
        logger.exception("dask_cli.debug: could not install keep-alive")


def shell_address(server: Any) -> str | None:
    """The address of the shell service running in ``server``, if any."""
    service = getattr(server, "dask_cli_shell", None)
    return getattr(service, "address", None)
