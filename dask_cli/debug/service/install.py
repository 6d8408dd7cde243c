"""What the ``dask_cli.debug`` preload installs, by kind of server: the shell
service of the core, then every feature. The one module that imports them all.

A new feature adds one line to the ``install_*_features`` function of the server
it extends (see :mod:`dask_cli.debug.service.features`). Nothing here may take
the server down: a failure is logged and the server goes on without that part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from distributed import Nanny, Scheduler, Worker
from distributed.diagnostics.plugin import NannyPlugin

from dask_cli.debug.service import breakpoints, fanout, keepalive, nanny, postmortem
from dask_cli.debug.service.plugin import ShellNannyPlugin, ShellSchedulerPlugin, ShellWorkerPlugin
from dask_cli.top import feature as top

logger = logging.getLogger("dask_cli.debug.service")


async def install(server: Any) -> None:
    """Install the dask-cli plugins and features into ``server`` (Worker, Nanny or Scheduler)."""
    try:
        if isinstance(server, Worker):
            await server.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
            install_worker_features(server)
        elif isinstance(server, Nanny):
            await _add_nanny_plugin(server, ShellNannyPlugin())
            await _add_nanny_plugin(server, nanny.NannyKeepalive())
        elif isinstance(server, Scheduler):
            server.add_plugin(ShellSchedulerPlugin(), idempotent=True)
            install_scheduler_features(server)
        else:
            logger.warning("dask_cli.debug: nothing to install in a %s", type(server).__name__)
    except Exception:
        logger.exception("dask_cli.debug: could not install the shell/keepalive plugins")


def install_worker_features(worker: Worker) -> None:
    """Keep-alive, post-mortem (recording while keepalive is on) and the worker's half
    of the nanny's crash records, and breakpoints in tasks. Idempotent; follows
    ``cli.keepalive.*``."""
    _guarded("keep-alive", keepalive.install, worker)
    _guarded("post-mortem", postmortem.install, worker, lambda: keepalive.enabled(worker))
    _guarded("crash files", nanny.write_crash_files_from_worker)
    _guarded("breakpoints", breakpoints.install, worker)
    _guarded("exec", fanout.install_worker, worker)


def install_scheduler_features(scheduler: Scheduler) -> None:
    """The snapshot ``dask top`` asks for once a second; ``dask worker exec``'s fan-out."""
    _guarded("dask top", top.install, scheduler)
    _guarded("exec fan-out", fanout.install_scheduler, scheduler)


async def _add_nanny_plugin(server: Nanny, plugin: NannyPlugin) -> None:
    if plugin.name not in server.plugins:
        await server.plugin_add(plugin, name=plugin.name)


def _guarded(what: str, install_one: Callable[..., None], *args: Any) -> None:
    try:
        install_one(*args)
    except Exception:
        logger.exception("dask_cli.debug: could not install %s", what)
