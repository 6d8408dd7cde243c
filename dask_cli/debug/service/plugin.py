"""The worker and scheduler plugins that run the shell service.

Our ``dask worker``/``dask scheduler`` install them through the ``dask_cli.debug``
preload; on any other cluster use ``--preload dask_cli.debug`` or
``client.register_plugin(ShellWorkerPlugin())`` / ``ShellSchedulerPlugin()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

from dask_cli.debug import protocol
from dask_cli.debug.names import KEPT_ALIVE, build_records

logger = logging.getLogger("dask_cli.debug.service")

# Retry publishing the worker's record while the scheduler is not reachable yet.
PUBLISH_ATTEMPTS = 30


def _log_shell_address(server_logger: logging.Logger, address: str) -> None:
    # Aligned like distributed's "      Start worker at: ..." lines.
    server_logger.info("             Shell at: %26s", address)


def _start_service(server: Any, role: str) -> Any:
    """The running service, or None (turned off, or it failed: logged, the server goes on)."""
    from dask_cli.debug.service.server import ShellService, shell_enabled

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


def worker_record(worker: Any, service: Any, **updates: Any) -> dict[str, Any]:
    """The record a worker publishes in the scheduler's metadata (see ``publish_record``)."""
    record = {
        "name": str(worker.name),
        "address": worker.address,
        "shell_address": service.address if service is not None else None,
        "status": "running",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "kept_alive_reason": None,
        "kept_alive_since": None,
    }
    record.update(updates)
    return record


async def publish_record(worker: Any, record: dict[str, Any]) -> None:
    """Store ``record`` under ``[METADATA_KEY, "workers", address]`` on the scheduler.

    The keep-alive side calls this with ``status="kept-alive"``, ``kept_alive_reason``
    and ``kept_alive_since`` when a worker enters that state.
    """
    await worker.scheduler.set_metadata(
        keys=[protocol.METADATA_KEY, "workers", worker.address], value=record
    )


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
        address = self.service.address
        worker.handlers[protocol.SHELL_ADDRESS_HANDLER] = lambda **_: address
        _log_shell_address(logging.getLogger("distributed.worker"), address)
        worker.dask_cli_shell = self.service
        self._publishing = asyncio.ensure_future(self._publish(worker))

    async def _publish(self, worker: Any) -> None:
        record = worker_record(worker, self.service)
        for _ in range(PUBLISH_ATTEMPTS):
            try:
                await publish_record(worker, record)
                return
            except Exception:
                await asyncio.sleep(1)
        logger.warning("dask-cli shell: could not publish the shell address to the scheduler")

    def teardown(self, worker: Any) -> None:
        if self._publishing is not None:
            self._publishing.cancel()
        worker.handlers.pop(protocol.SHELL_ADDRESS_HANDLER, None)
        if self.service is not None:
            self.service.stop()
            self.service = None


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
            address = self.service.address
            scheduler.handlers[protocol.SHELL_ADDRESS_HANDLER] = lambda **_: address
            _log_shell_address(logging.getLogger("distributed.scheduler"), address)
            scheduler.dask_cli_shell = self.service

    async def close(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

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
        if isinstance(record, dict) and record.get("status") == KEPT_ALIVE:
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
                and record.get("status") == KEPT_ALIVE
                and address not in scheduler.workers
            ):
                self.remembered.setdefault(address, dict(record))
        for address in list(self.remembered):
            # Released (or re-published as not kept alive): forget it.
            current = metadata.get(address)
            if isinstance(current, dict) and current.get("status") != KEPT_ALIVE:
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
        return [r.to_dict() for r in build_records(workers, metadata, self.remembered)]
