"""The scheduler side of ``dask top``: a service feature answering ``SNAPSHOT_HANDLER``.

Registered with the service core (:mod:`dask_cli.debug.service.features`) by
:func:`install`, which the ``dask_cli.debug`` preload calls on schedulers (our
``dask scheduler`` loads it); ``--preload dask_cli.top.feature`` installs it alone.
It keeps one small piece of state, the throughput
history (a sample a second of the scheduler's finished-task counter), and builds
each snapshot from what the scheduler already knows; kept-alive workers come from
the shell plugin's worker registry, so those that left the cluster stay listed.
"""

from __future__ import annotations

import logging
from typing import Any

from dask_cli.debug import protocol as debug_protocol
from dask_cli.debug.service import features
from dask_cli.top import protocol, snapshot

logger = logging.getLogger("dask_cli.top")

SHELL_PLUGIN = "dask-cli-shell"  # ShellSchedulerPlugin.name
SAMPLE_MS = 1000


class TopFeature(features.ShellFeature):
    """What one scheduler needs to serve ``dask top``."""

    name = "top"

    def __init__(self, scheduler: Any):
        from tornado.ioloop import PeriodicCallback

        self.scheduler = scheduler
        self.throughput = snapshot.ThroughputHistory()
        self._sampler = PeriodicCallback(self._sample, SAMPLE_MS)

    def handlers(self) -> dict[str, Any]:
        return {protocol.SNAPSHOT_HANDLER: self.snapshot}

    def start(self) -> None:
        """Start sampling the throughput (idempotent)."""
        if self._sampler.is_running():
            return
        self.scheduler.periodic_callbacks["dask-cli-top-throughput"] = self._sampler
        self._sample()
        self._sampler.start()

    def close(self) -> None:
        self._sampler.stop()
        self.scheduler.periodic_callbacks.pop("dask-cli-top-throughput", None)

    def _sample(self) -> None:
        self.throughput.sample(self.scheduler)

    def _registry(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(address → record of live workers, address → record of kept-alive workers
        that left), from the shell plugin's registry; empty without that plugin."""
        plugin = self.scheduler.plugins.get(SHELL_PLUGIN)
        if plugin is None or not hasattr(plugin, "worker_records"):
            return {}, {}
        if not self._registry_matters(plugin):
            return {}, {}
        live: dict[str, dict[str, Any]] = {}
        departed: dict[str, dict[str, Any]] = {}
        workers = self.scheduler.workers
        for record in plugin.worker_records():
            address = record.get("address")
            (live if address in workers else departed)[address] = record
        return live, departed

    def _registry_matters(self, plugin: Any) -> bool:
        """Whether the registry could change a row. The snapshot reads a worker's
        record only for its kept-alive status and reason, and ``worker_records``
        validates every worker's record (about 1 ms per 200 workers, the bulk of a
        snapshot): without a kept-alive record published or remembered it would
        change nothing, so one pass over the raw metadata decides."""
        if getattr(plugin, "remembered", True):
            return True  # kept-alive workers that left, or a plugin we do not know
        metadata = self.scheduler.get_metadata(
            keys=[debug_protocol.METADATA_KEY, "workers"], default={}
        )
        if not isinstance(metadata, dict):
            return False
        for record in metadata.values():
            if isinstance(record, dict) and (
                record.get("status") == debug_protocol.KEPT_ALIVE or record.get("kept_alive_reason")
            ):
                return True
        return False

    def _pauses(self) -> dict[str, Any]:
        """Worker address → its tasks paused at ``breakpoint()`` (published by the
        breakpoint feature in the scheduler's metadata)."""
        found = self.scheduler.get_metadata(
            keys=[debug_protocol.METADATA_KEY, debug_protocol.PAUSED_KEY], default={}
        )
        return found if isinstance(found, dict) else {}

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
            pauses=self._pauses(),
            limit=limit,
            sort=sort,
            reverse=bool(reverse),
            log_since=log_since,
        )


def install(scheduler: Any) -> TopFeature:
    """Serve ``dask top`` from ``scheduler`` (idempotent)."""
    feature = features.register(scheduler, TopFeature(scheduler))
    feature.start()
    return feature


async def dask_setup(scheduler: Any) -> None:
    """``--preload dask_cli.top.feature``."""
    from distributed import Scheduler

    if isinstance(scheduler, Scheduler):
        install(scheduler)
    else:
        logger.warning("dask_cli.top: nothing to install in a %s", type(scheduler).__name__)
