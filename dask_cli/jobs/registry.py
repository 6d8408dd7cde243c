"""The scheduler side of jobs: one record per job, kept after its client left.

``JobRegistry`` is a scheduler plugin. The client registers it (idempotently) on
every ``dask job submit`` with ``Client.register_plugin``, so jobs work on any
cluster whose scheduler and workers have dask-cli installed, with or without our
``dask scheduler`` or the ``dask_cli.debug`` preload, and the debugging toolkit
never has to know about jobs. Its state is in memory: records live as long as the
scheduler does.

Bounded: it keeps the last ``cli.job.max-records`` records (the scheduler's dask
config). Finished records go first, oldest first; a job still pending or running
is never dropped. Keys of dropped records are remembered (a bounded set of
strings), so asking about one says it was dropped rather than "unknown", and the
worker that ran it is told to delete its output.

No silent re-runs: a job's task claims the job (``CLAIM``) before it starts the
script, and only a pending job can be claimed. When a worker leaves while it runs
a job, ``remove_worker`` marks that job FAILED and releases its task; should
distributed still reschedule it, the second attempt's claim is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from dask_cli.jobs import protocol
from dask_cli.jobs.protocol import JobRecord

logger = logging.getLogger("dask_cli.jobs")

DEFAULT_MAX_RECORDS = 1000
# Remember this many dropped keys per kept record, to say "dropped" about them.
DROPPED_FACTOR = 10
# Bound of one long poll (``READ`` with ``wait``), whatever the client asks.
MAX_WAIT = 10.0
# How long ``CANCEL`` waits for a running job's process to be gone.
CANCEL_WAIT = 10.0
# A pending job whose task has not reached the scheduler after this long never will
# (its client died between recording the job and submitting the task).
ORPHAN_AFTER = 60.0
# The client name distributed's ``fire_and_forget`` uses for the futures it keeps.
FIRE_AND_FORGET = "fire-and-forget"


def _max_records() -> int:
    from dask_cli import config

    try:
        return max(1, int(config.get("job.max-records", DEFAULT_MAX_RECORDS)))
    except (TypeError, ValueError):
        return DEFAULT_MAX_RECORDS


class JobRegistry(SchedulerPlugin):
    """Job records on the scheduler, and the handlers of ``protocol`` that use them."""

    name = protocol.PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.scheduler: Any = None
        self.records: OrderedDict[str, JobRecord] = OrderedDict()
        self.dropped: OrderedDict[str, None] = OrderedDict()
        self.max_records = DEFAULT_MAX_RECORDS
        self._changed: dict[str, asyncio.Event] = {}
        self._background: set[asyncio.Task[Any]] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1}  # nothing to ship: the state is built on the scheduler

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.max_records = _max_records()  # the scheduler's config, not the client's
        scheduler.handlers.update(
            {
                protocol.SUBMIT: self.submit,
                protocol.CLAIM: self.claim,
                protocol.RUNNING: self.running,
                protocol.FINISHED: self.finished,
                protocol.STATUS: self.status,
                protocol.LIST: self.list,
                protocol.CANCEL: self.cancel,
                protocol.READ: self.read,
            }
        )

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()

    # --- records --------------------------------------------------------------------

    def _changed_event(self, key: str) -> asyncio.Event:
        return self._changed.setdefault(key, asyncio.Event())

    def _notify(self, key: str) -> None:
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()

    async def _wait_change(self, key: str, timeout: float) -> None:
        if timeout <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._changed_event(key).wait(), timeout)

    def _missing(self, key: str) -> dict[str, Any]:
        why = protocol.MISSING_DROPPED if key in self.dropped else protocol.MISSING_UNKNOWN
        return {"missing": why, "max_records": self.max_records}

    def _end(self, record: JobRecord, state: str, reason: str | None) -> None:
        record.state = state
        record.reason = reason
        record.finished = time.time()
        self._notify(record.key)

    def _release_task(self, key: str) -> None:
        """Let distributed forget the job's task (it was kept by fire-and-forget)."""
        scheduler = self.scheduler
        if scheduler is None or key not in scheduler.tasks:
            return
        with contextlib.suppress(Exception):
            scheduler.client_releases_keys(
                keys=[key], client=FIRE_AND_FORGET, stimulus_id=f"dask-cli-job-{time.time()}"
            )

    def _evict(self) -> None:
        excess = len(self.records) - self.max_records
        if excess <= 0:
            return
        for key, record in list(self.records.items()):
            if excess <= 0:
                break
            if not record.done:
                continue
            del self.records[key]
            self.dropped[key] = None
            excess -= 1
            if record.worker:
                self._in_background(self._forget_output(record.worker, key))
        while len(self.dropped) > self.max_records * DROPPED_FACTOR:
            self.dropped.popitem(last=False)

    def _in_background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forget_output(self, worker: str, key: str) -> None:
        if worker not in self.scheduler.workers:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                getattr(self.scheduler.rpc(worker), protocol.FORGET)(key=key), 10
            )

    # --- handlers: the client -------------------------------------------------------

    def submit(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add a PENDING record (before the client submits the job's task)."""
        job = JobRecord.from_dict(record)
        if job.key in self.records:
            return {"ok": False, "reason": f"a job with key {job.key} exists"}
        job.state = protocol.PENDING
        job.submitted = time.time()
        self.records[job.key] = job
        self._evict()
        return {"ok": True, "record": job.to_dict()}

    def _fail_orphans(self, *records: JobRecord) -> None:
        """FAILED for pending ``records`` (default: all) whose task never arrived."""
        now = time.time()
        for record in records or list(self.records.values()):
            if (
                record.state == protocol.PENDING
                and now - record.submitted > ORPHAN_AFTER
                and record.key not in self.scheduler.tasks
            ):
                self._end(record, protocol.FAILED, "its task never reached the scheduler")

    def status(self, key: str) -> dict[str, Any]:
        self._fail_orphans()
        record = self.records.get(key)
        if record is None:
            return self._missing(key)
        return {"record": record.to_dict()}

    def list(self) -> dict[str, Any]:
        self._fail_orphans()
        return {
            "records": [r.to_dict() for r in self.records.values()],
            "max_records": self.max_records,
        }

    async def cancel(self, key: str, wait: float = CANCEL_WAIT) -> dict[str, Any]:
        """Cancel a job: a pending one never starts; a running one's process group gets
        SIGTERM (SIGKILL after a grace) and the reply waits until it is gone."""
        record = self.records.get(key)
        if record is None:
            return self._missing(key)
        if record.done:
            return {"record": record.to_dict(), "already": True}
        record.cancel_requested = True
        if record.state == protocol.PENDING:
            self._end(record, protocol.CANCELLED, "cancelled before it started")
            self._release_task(key)
            return {"record": record.to_dict()}
        assert record.worker is not None
        try:
            await asyncio.wait_for(
                getattr(self.scheduler.rpc(record.worker), protocol.STOP)(key=key), wait
            )
        except Exception as exc:
            logger.warning("dask-cli job %s: could not reach its worker to stop it: %s", key, exc)
        deadline = time.monotonic() + min(float(wait), MAX_WAIT * 3)
        while not record.done and time.monotonic() < deadline:
            await self._wait_change(key, deadline - time.monotonic())
        return {"record": record.to_dict()}

    async def read(
        self,
        key: str,
        offsets: dict[str, int] | None = None,
        streams: list[str] | None = None,
        limit: int | None = None,
        wait: float = 0,
    ) -> dict[str, Any]:
        """Output of ``key`` from ``offsets`` on, fetched from the worker that runs it.

        A long poll with ``wait``: it answers when there is output, when the job's
        state changed, or after ``wait`` seconds (at most ``MAX_WAIT``).
        """
        wait = min(max(float(wait), 0.0), MAX_WAIT)
        record = self.records.get(key)
        if record is None:
            return self._missing(key)
        self._fail_orphans(record)
        if record.state == protocol.PENDING:
            await self._wait_change(key, wait)
            record = self.records.get(key) or record
            if record.state == protocol.PENDING or record.worker is None:
                return {"record": record.to_dict(), "data": {}, "done": record.done}
        if record.worker is None:  # ended without ever running
            return {"record": record.to_dict(), "data": {}, "done": True}
        if record.worker not in self.scheduler.workers:
            return {
                "record": record.to_dict(),
                "gone": f"its output was on worker {record.worker_name or record.worker}, "
                "which has left the cluster",
            }
        kwargs = {"key": key, "offsets": offsets or {}, "streams": streams, "wait": wait}
        if limit:
            kwargs["limit"] = int(limit)
        try:
            reply = await asyncio.wait_for(
                getattr(self.scheduler.rpc(record.worker), protocol.OUTPUT)(**kwargs), wait + 30
            )
        except Exception as exc:
            return {
                "record": record.to_dict(),
                "gone": f"cannot read its output from worker "
                f"{record.worker_name or record.worker}: {exc}",
            }
        if not isinstance(reply, dict):
            reply = {"gone": f"worker {record.worker} has no job output handler"}
        if reply.get("done") and not record.done:
            # The worker reports the end before its readers see it; a lost report
            # still ends the poll, after at most ``wait``.
            await self._wait_change(key, wait)
        reply["record"] = record.to_dict()
        return reply

    # --- handlers: the job's task on a worker ---------------------------------------

    def claim(self, key: str, worker: str) -> dict[str, Any]:
        """The task may start the script only if the job is still pending."""
        record = self.records.get(key)
        if record is None:
            return {"ok": False, "reason": f"no record of job {key} on the scheduler"}
        if record.state != protocol.PENDING:
            reason = f"job {key} is {record.state}"
            if record.state == protocol.RUNNING or record.started is not None:
                reason += " and already started once: a job is never run twice"
            return {"ok": False, "reason": reason}
        ws = self.scheduler.workers.get(worker)
        record.state = protocol.RUNNING_STATE
        record.worker = worker
        record.worker_name = str(ws.name) if ws is not None else worker
        record.started = time.time()
        self._notify(key)
        return {"ok": True}

    def running(self, key: str, pid: int) -> None:
        record = self.records.get(key)
        if record is not None:
            record.pid = pid
            self._notify(key)

    def finished(self, key: str, exit_code: int | None, reason: str | None = None) -> None:
        record = self.records.get(key)
        if record is None or record.done:
            return  # e.g. already FAILED because the scheduler lost the worker
        record.exit_code = exit_code
        if record.cancel_requested:
            self._end(record, protocol.CANCELLED, "cancelled")
        elif exit_code == 0 and reason is None:
            self._end(record, protocol.SUCCEEDED, None)
        else:
            self._end(record, protocol.FAILED, reason or protocol.describe_exit(exit_code))
        self._evict()

    # --- scheduler hooks ------------------------------------------------------------

    def remove_worker(
        self, scheduler: Any, worker: str, *, stimulus_id: str, **kwargs: Any
    ) -> None:
        for record in list(self.records.values()):
            if record.worker == worker and record.state == protocol.RUNNING_STATE:
                name = record.worker_name or worker
                self._end(
                    record,
                    protocol.FAILED,
                    f"worker {name} died or left the cluster while the job ran "
                    "(it is not run again)",
                )
                # Not while distributed is still removing the worker.
                asyncio.get_running_loop().call_soon(self._release_task, record.key)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish not in ("erred", "forgotten"):
            return
        record = self.records.get(key) if isinstance(key, str) else None
        if record is None or record.done:
            return
        if finish == "erred":
            ts = self.scheduler.tasks.get(key)
            text = getattr(ts, "exception_text", None) or kwargs.get("exception_text")
            self._end(record, protocol.FAILED, f"its task failed: {text or 'unknown error'}")
        elif record.state == protocol.PENDING:
            self._end(record, protocol.FAILED, "its task was released before it started")
