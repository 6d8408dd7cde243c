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
    """Keep-alive on the nanny side: crash records, no restart of a kept-alive worker."""
    from dask_cli.debug.service import nanny as nanny_support

    nanny_support.install(nanny)


def install_keepalive(worker: Any) -> None:
    """Keep-alive and post-mortem (follows ``cli.keepalive.*``; idempotent). A failure
    leaves the shell working."""
    from dask_cli.debug.service import keepalive

    try:
        keepalive.install(worker)
    except Exception:
        logger.exception("dask_cli.debug: could not install keep-alive")


def shell_address(server: Any) -> str:
    """The address ``dask worker shell`` should use for ``server``: its shell
    service's, else the server's own (whose handler answers the shell address)."""
    service = getattr(server, "dask_cli_shell", None)
    return str(getattr(service, "address", None) or server.address)
