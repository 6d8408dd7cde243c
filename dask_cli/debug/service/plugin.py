"""The worker and scheduler plugins that run the shell service.

Our ``dask worker``/``dask scheduler`` install them through the ``dask_cli.debug``
preload; on any other cluster use ``--preload dask_cli.debug`` or
``client.register_plugin(ShellWorkerPlugin())`` / ``ShellSchedulerPlugin()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import dask.config
from distributed.diagnostics.plugin import NannyPlugin, SchedulerPlugin, WorkerPlugin

from dask_cli.debug import protocol
from dask_cli.debug.names import build_records
from dask_cli.debug.service.server import ShellService, shell_enabled, target_info

logger = logging.getLogger("dask_cli.debug.service")

# Retry publishing the worker's record while the scheduler is not reachable yet.
PUBLISH_ATTEMPTS = 30


def _start_service(server: Any, role: str) -> ShellService | None:
    """The running service, or None (turned off, or it failed: logged, the server goes on)."""
    try:
        if not shell_enabled(server):
            logger.info("dask-cli shell service is off for this %s", role)
            return None
        service = ShellService(server, role)
        service.start()
    except Exception:
        logger.exception("dask-cli shell service could not start in this %s", role)
        return None
    return service


def _advertise(server: Any, service: ShellService, log_name: str, label: str) -> None:
    """Make ``service`` findable: ``server.dask_cli_shell``, the shell-address handler
    and one log line (aligned like distributed's "      Start worker at: ..." lines)."""
    address = service.address
    server.dask_cli_shell = service
    server.handlers[protocol.SHELL_ADDRESS_HANDLER] = lambda **_: address
    logging.getLogger(log_name).info("%21s: %26s", label, address)


def record_keys(address: str) -> list[str]:
    """Where the scheduler's metadata keeps the record of the worker at ``address``."""
    return [protocol.METADATA_KEY, "workers", address]


async def publish_record(
    server: Any,
    timeout: float | None = None,
    only_if_listed: bool = False,
    **changes: Any,
) -> None:
    """Store ``server``'s record (``target_info`` with its features' fields, then
    ``changes``) in the scheduler's metadata, where ``dask worker list`` reads it.

    Features call this when their ``record_fields`` change. ``changes`` may set
    ``address`` (a nanny publishing for its dead worker). ``only_if_listed``: update
    a record that exists, never create one. ``timeout`` bounds each call to the
    scheduler (None: distributed's own)."""
    record = {**target_info(server).to_msg(), **changes}
    keys = record_keys(record["address"])
    if only_if_listed:
        found = await asyncio.wait_for(
            server.scheduler.get_metadata(keys=keys, default=None), timeout
        )
        if not isinstance(found, dict):
            return
    await asyncio.wait_for(server.scheduler.set_metadata(keys=keys, value=record), timeout)


class ShellWorkerPlugin(WorkerPlugin):
    """A shell service in the worker; advertised in the log, as a handler and in the
    scheduler's metadata."""

    name = "dask-cli-shell"
    idempotent = True

    def __init__(self) -> None:
        self.service: Any = None
        self._publishing: asyncio.Task[None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1}  # nothing to ship: state is built on the server

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    def setup(self, worker: Any) -> None:
        self.service = _start_service(worker, "worker")
        if self.service is None:
            return
        _advertise(worker, self.service, "distributed.worker", "Shell at")
        self._publishing = asyncio.ensure_future(self._publish(worker))

    async def _publish(self, worker: Any) -> None:
        for _ in range(PUBLISH_ATTEMPTS):
            try:
                await publish_record(worker)
                return
            except Exception:
                await asyncio.sleep(1)
        logger.warning("dask-cli shell: could not publish the shell address to the scheduler")

    async def teardown(self, worker: Any) -> None:
        if self._publishing is not None:
            self._publishing.cancel()
        worker.handlers.pop(protocol.SHELL_ADDRESS_HANDLER, None)
        service, self.service = self.service, None
        if service is not None:
            await service.close()  # bounded, and the worker's loop goes on meanwhile


class ShellSchedulerPlugin(SchedulerPlugin):
    """A shell service in the scheduler, plus the worker registry (``WORKERS_HANDLER``)
    that remembers workers which left the cluster while kept alive."""

    name = "dask-cli-shell"
    idempotent = True

    def __init__(self) -> None:
        self.service: Any = None
        self.scheduler: Any = None
        # address → record of kept-alive workers no longer in scheduler.workers
        self.remembered: dict[str, dict[str, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1}  # nothing to ship: state is built on the server

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        scheduler.handlers[protocol.WORKERS_HANDLER] = self.worker_records
        self.service = _start_service(scheduler, "scheduler")
        if self.service is not None:
            _advertise(scheduler, self.service, "distributed.scheduler", "Shell at")

    async def close(self) -> None:
        service, self.service = self.service, None
        if service is not None:
            await service.close()

    @staticmethod
    def _metadata(scheduler: Any) -> dict[str, Any]:
        found = scheduler.get_metadata(keys=[protocol.METADATA_KEY, "workers"], default={})
        return found if isinstance(found, dict) else {}

    def add_worker(self, scheduler: Any, worker: str) -> None:
        ws = scheduler.workers.get(worker)
        name = str(ws.name) if ws is not None else None
        for address, record in list(self.remembered.items()):
            if address == worker or str(record.get("name")) == name:
                del self.remembered[address]

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        metadata = self._metadata(scheduler)
        record = metadata.get(worker)
        if isinstance(record, dict) and record.get("status") == protocol.KEPT_ALIVE:
            ws = scheduler.workers.get(worker)
            kept = dict(record)
            if ws is not None:
                kept.update(nthreads=ws.nthreads, memory_limit=ws.memory_limit)
            kept.setdefault("kept_alive_since", time.time())
            self.remembered[worker] = kept
        else:
            metadata.pop(worker, None)

    def worker_records(self, **_: Any) -> list[dict[str, Any]]:
        """``WORKERS_HANDLER``: every worker record, kept-alive ones that left included."""
        scheduler = self.scheduler
        metadata = self._metadata(scheduler)
        # Workers that published their kept-alive record after the scheduler had
        # already removed them (heartbeat missing, lifetime: keepalive.py).
        for address, record in metadata.items():
            if (
                isinstance(record, dict)
                and record.get("status") == protocol.KEPT_ALIVE
                and address not in scheduler.workers
            ):
                self.remembered.setdefault(address, dict(record))
        for address in list(self.remembered):
            # Released (or re-published as not kept alive): forget it.
            current = metadata.get(address)
            if isinstance(current, dict) and current.get("status") != protocol.KEPT_ALIVE:
                del self.remembered[address]
                metadata.pop(address, None)
        workers = {
            address: {
                "name": ws.name,
                "status": ws.status.name,
                "nthreads": ws.nthreads,
                "memory_limit": ws.memory_limit,
                "tasks": len(ws.processing),
            }
            for address, ws in list(scheduler.workers.items())
        }
        return [r.to_msg() for r in build_records(workers, metadata, self.remembered)]


class ShellNannyPlugin(NannyPlugin):
    """A shell service in the nanny too, so a worker process that died can still be
    inspected (the nanny keeps what its features record, e.g. a crash record)."""

    name = "dask-cli-shell"
    idempotent = True

    def __init__(self) -> None:
        self.service: ShellService | None = None

    def setup(self, nanny: Any) -> None:
        # --shell-port belongs to the worker process: the nanny starts first and
        # would take it, so the nanny's own shell listens on a random port.
        with dask.config.set({"cli.shell.port": 0}):
            self.service = _start_service(nanny, "worker")
        if self.service is not None:
            _advertise(nanny, self.service, "distributed.nanny", "Nanny shell at")

    def teardown(self, nanny: Any) -> None:
        nanny.handlers.pop(protocol.SHELL_ADDRESS_HANDLER, None)
        if self.service is not None:
            self.service.stop()
            self.service = None
