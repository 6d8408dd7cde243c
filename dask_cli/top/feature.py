"""The scheduler side of ``dask top``: answers ``SNAPSHOT_HANDLER``.

Installed into a scheduler with :func:`install` (``--preload dask_cli.top.feature``
does it on any scheduler). It keeps one small piece of state, the throughput
history (a sample a second of the scheduler's finished-task counter), and builds
each snapshot from what the scheduler already knows; kept-alive workers come from
the shell plugin's worker registry, so those that left the cluster stay listed.
"""

from __future__ import annotations

import logging
from typing import Any

from dask_cli.top import protocol, snapshot

logger = logging.getLogger("dask_cli.top")

ATTRIBUTE = "dask_cli_top"
SHELL_PLUGIN = "dask-cli-shell"  # ShellSchedulerPlugin.name
SAMPLE_MS = 1000


class TopFeature:
    """What one scheduler needs to serve ``dask top``."""

    def __init__(self, scheduler: Any):
        from tornado.ioloop import PeriodicCallback

        self.scheduler = scheduler
        self.throughput = snapshot.ThroughputHistory()
        self._sampler = PeriodicCallback(self._sample, SAMPLE_MS)

    def start(self) -> None:
        self.scheduler.handlers[protocol.SNAPSHOT_HANDLER] = self.snapshot
        self.scheduler.periodic_callbacks["dask-cli-top-throughput"] = self._sampler
        self._sample()
        self._sampler.start()

    def stop(self) -> None:
        self._sampler.stop()
        self.scheduler.periodic_callbacks.pop("dask-cli-top-throughput", None)
        self.scheduler.handlers.pop(protocol.SNAPSHOT_HANDLER, None)

    def _sample(self) -> None:
        self.throughput.sample(self.scheduler)

    def _registry(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(address → record of live workers, address → record of kept-alive workers
        that left), from the shell plugin's registry; empty without that plugin."""
        plugin = self.scheduler.plugins.get(SHELL_PLUGIN)
        if plugin is None or not hasattr(plugin, "worker_records"):
            return {}, {}
        live: dict[str, dict[str, Any]] = {}
        departed: dict[str, dict[str, Any]] = {}
        workers = self.scheduler.workers
        for record in plugin.worker_records():
            address = record.get("address")
            (live if address in workers else departed)[address] = record
        return live, departed

    def snapshot(
        self,
        limit: int = protocol.DEFAULT_WORKERS,
        sort: str | None = None,
        reverse: bool = False,
        log_since: float = 0.0,
        **_: Any,
    ) -> dict[str, Any]:
        """``SNAPSHOT_HANDLER``: one compact snapshot (see :mod:`dask_cli.top.protocol`)."""
        live, departed = self._registry()
        return snapshot.build(
            self.scheduler,
            live,
            departed,
            self.throughput,
            paused=None,
            limit=limit,
            sort=sort,
            reverse=bool(reverse),
            log_since=log_since,
        )


def install(scheduler: Any) -> TopFeature:
    """Serve ``dask top`` from ``scheduler`` (idempotent)."""
    feature = getattr(scheduler, ATTRIBUTE, None)
    if feature is None:
        feature = TopFeature(scheduler)
        feature.start()
        setattr(scheduler, ATTRIBUTE, feature)
    return feature


async def dask_setup(scheduler: Any) -> None:
    """``--preload dask_cli.top.feature``."""
    from distributed import Scheduler

    if isinstance(scheduler, Scheduler):
        install(scheduler)
    else:
        logger.warning("dask_cli.top: nothing to install in a %s", type(scheduler).__name__)
