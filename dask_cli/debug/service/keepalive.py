"""``--keepalive``: a worker that fails stays up, with its state, for post-mortem.

distributed ends a worker that loses its scheduler, fails a heartbeat, hits an
internal error (``fail_hard``) or reaches its ``--lifetime``: every one of those
paths goes through ``Worker.close(reason=...)`` (``fail_hard`` through
``_force_close``, which calls ``os._exit(1)`` only if ``close`` itself fails).
So the narrowest interception point is ``close`` on the worker *instance*, plus
the two handler tables that captured the bound method at ``__init__`` (the
scheduler's ``{"op": "close"}`` stream message and the ``terminate`` RPC). The
wrapper looks at the reason: a failure enters the kept-alive state; anything
else (a signal, the nanny, ``dask worker release``, a client closing the worker)
closes as distributed always did.

Kept alive means: tasks paused, periodic callbacks (heartbeat, keep-alive,
memory monitor) stopped, the worker unregistered from a scheduler that is still
reachable (so the cluster moves on), data/tasks/logs untouched, and the shell
service (its own thread) still answering. One log line says why and how to
connect. The nanny is told so it neither restarts nor kills the process
(see :mod:`dask_cli.debug.service.nanny`).

Functions here are called from the shell service's thread as well as from the
worker's loop: anything that touches the worker runs on its loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dask_cli.debug import protocol
from dask_cli.debug.service import features
from dask_cli.debug.service.plugin import publish_record
from dask_cli.debug.service.server import shell_address, target_info

if TYPE_CHECKING:
    from distributed import Worker

    from dask_cli.debug.service.session import ShellSession

# A child of "distributed.worker": the line reaches the worker's stderr and its
# own log deque (``dask worker logs``), with distributed's formatting.
logger = logging.getLogger("distributed.worker.dask_cli")

TIMEOUT_REASON = "dask-cli-keepalive-timeout"
# How long a release may wait for a blocked event loop before the process exits anyway.
RELEASE_GRACE_SECONDS = 30.0

# distributed's close reasons that mean "something failed", with the words users see.
FAILURE_REASONS = {
    "worker-handle-scheduler-connection-broken": "lost its connection to the scheduler",
    "worker-heartbeat-missing": "the scheduler no longer knew it (heartbeat missing)",
    "worker-heartbeat-error": "its heartbeat to the scheduler failed",
    "worker-lifetime-reached": "its --lifetime was reached",
    "scheduler-close": "the scheduler shut down",
    "scheduler-remove-worker": "the scheduler removed it (e.g. missed heartbeats)",
}


def describe_failure(reason: str) -> str | None:
    """Words for a close ``reason`` that is a failure, or None for an operator's request."""
    if reason in FAILURE_REASONS:
        return f"{FAILURE_REASONS[reason]} ({reason})"
    if reason.endswith("-fail-hard"):
        method = reason.removeprefix("worker-").removesuffix("-fail-hard")
        return f"internal error in Worker.{method} ({reason})"
    return None


@dataclass
class KeptAlive:
    reason: str
    since: float  # time.time()


class WorkerKeepalive(features.ShellFeature):
    """The keepalive switch and state of one worker, registered as its ``keepalive``
    feature: it answers ``keepalive`` and ``release`` and sets the record's
    keep-alive fields."""

    name = "keepalive"

    def __init__(self, worker: Worker, enabled: bool, timeout: float | None):
        self.worker = worker
        self.enabled = enabled
        self.timeout = timeout
        self.kept: KeptAlive | None = None
        self._original_close = worker.close
        self._timeout_handle: asyncio.TimerHandle | None = None
        self._releasing = False
        self._operator_close = False
        self._telling: asyncio.Future | None = None
        # distributed's lifetime timer (set in Worker.__init__, a moment before this)
        # calls close_gracefully, which retires the worker first: the scheduler then
        # forgets it and the close that reaches us says "heartbeat missing" or
        # "connection broken". Past this deadline, any failure close is the lifetime's.
        lifetime = getattr(worker, "lifetime", None)
        self._lifetime_deadline = time.monotonic() + lifetime - 1.0 if lifetime else None

    # --- what it adds to the shell service -----------------------------------

    def requests(self) -> dict[type[protocol.Request], features.RequestHandler]:
        return {protocol.SetKeepalive: self._set_keepalive, protocol.Release: self._release}

    def record_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"keepalive": self.enabled}
        if self.kept is not None:
            fields.update(
                status=protocol.KEPT_ALIVE,
                kept_alive_reason=self.kept.reason,
                kept_alive_since=self.kept.since,
            )
        return fields

    def _set_keepalive(self, request: protocol.SetKeepalive, session: ShellSession) -> dict:
        """``dask worker keepalive NAME on|off``. Switching off does not end a kept-alive
        worker. Answers the record after the switch."""
        self.enabled = bool(request.enabled)
        if self.worker.nanny:
            _on_loop(self.worker, self._tell_nanny)
        return target_info(self.worker).to_msg()

    def _release(self, request: protocol.Release, session: ShellSession) -> dict:
        """``dask worker release NAME``: answers the record before the worker exits."""
        release(self.worker)
        return target_info(self.worker).to_msg()

    # --- interception -----------------------------------------------------

    async def close(self, *args: Any, **kwargs: Any) -> str | None:
        """``Worker.close`` with keepalive: failures keep the worker, the rest closes it."""
        reason = kwargs.get("reason", "worker-close")
        if self.kept is not None and not self._releasing:
            if describe_failure(reason) is not None:
                logger.debug("Kept-alive worker ignores close (reason %s)", reason)
                return None
            # An operator's request (signal via the nanny, terminate RPC): exit now.
            self._releasing = True
            kwargs["nanny"] = False
            await self._unpublish()
            return await self._original_close(*args, **kwargs)
        description = describe_failure(reason)
        if description is not None and self._shutting_down():
            # The scheduler stream broke because the worker is already being closed by
            # an operator (a signal via the nanny), or because the process is exiting
            # (``--no-nanny``: asyncio.run cancels every task after SIGINT/SIGTERM).
            description = None
        if description is None:
            self._operator_close = True
        if description is not None and self._lifetime_reached():
            if self.worker.lifetime_restart:  # the nanny restarts it: as distributed does
                return await self._original_close(*args, **kwargs)
            description = describe_failure("worker-lifetime-reached")
        if self.enabled and description is not None and not self._releasing:
            await self.enter(description)
            return None
        return await self._original_close(*args, **kwargs)

    def _shutting_down(self) -> bool:
        from distributed.core import Status

        if self._operator_close or self.worker.status in (Status.closing, Status.closed):
            return True
        task = asyncio.current_task()
        cancelling = getattr(task, "cancelling", None)  # Python >= 3.11
        return bool(cancelling and cancelling())

    def _lifetime_reached(self) -> bool:
        deadline = self._lifetime_deadline
        return deadline is not None and time.monotonic() >= deadline

    # --- the kept-alive state ---------------------------------------------

    async def enter(self, reason: str) -> None:
        """Stop taking part in the cluster but keep everything; log how to connect."""
        from distributed.core import Status

        if self.kept is not None:
            return
        worker = self.worker
        self.kept = KeptAlive(reason=reason, since=time.time())
        for pc in worker.periodic_callbacks.values():
            pc.stop()
        if worker.status == Status.running:
            try:
                worker.status = Status.paused  # no new tasks from the ready queue
            except Exception:  # the stream to the scheduler may be gone
                logger.debug("Could not pause the kept-alive worker", exc_info=True)
        logger.warning(
            "Worker %r (%s) is kept alive for post-mortem: %s. Inspect it with: "
            "dask worker shell %s   (exits on SIGINT/SIGTERM or `dask worker release %s`%s)",
            worker.name,
            worker.address,
            reason,
            shell_address(worker),
            shell_address(worker),
            f", or after {self.timeout:g} s" if self.timeout else "",
        )
        if self.timeout:
            self._timeout_handle = asyncio.get_running_loop().call_later(
                self.timeout, lambda: asyncio.ensure_future(self.exit(TIMEOUT_REASON))
            )
        # In the background: fail_hard's _force_close gives close() 30 s before it calls
        # os._exit(1), and an unreachable scheduler must not eat into that.
        self._telling = asyncio.ensure_future(
            asyncio.gather(self._tell_nanny(), self._tell_scheduler())
        )

    async def exit(self, reason: str = protocol.RELEASE_REASON) -> None:
        """Really close the worker (and its nanny, which must not restart it)."""
        if self._releasing:
            return
        self._releasing = True
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        logger.info("Kept-alive worker %r exits: %s", self.worker.name, reason)
        await self._unpublish()
        await self._original_close(nanny=True, reason=reason)

    async def _unpublish(self) -> None:
        """Tell a reachable scheduler this worker is gone, so listings drop it."""
        try:
            await publish_record(self.worker, 2, only_if_listed=True, status=protocol.CLOSED)
        except Exception as exc:
            logger.debug("Could not tell the scheduler that this worker exits: %r", exc)

    async def _tell_nanny(self) -> None:
        worker = self.worker
        if not worker.nanny:
            return
        try:
            async with worker.rpc(worker.nanny) as nanny:
                await asyncio.wait_for(
                    getattr(nanny, protocol.NANNY_KEEPALIVE_HANDLER)(
                        **protocol.NannyKeepalive(self.enabled, self.state()).to_msg()
                    ),
                    5,
                )
        except Exception:
            logger.warning("Could not tell the nanny that this worker is kept alive", exc_info=True)

    async def _tell_scheduler(self) -> None:
        """Publish the kept-alive record, then leave the scheduler so the cluster moves on."""
        worker = self.worker
        try:
            await publish_record(worker, 3)  # with record_fields: kept alive
            await asyncio.wait_for(
                worker.scheduler.unregister(
                    address=worker.address,
                    stimulus_id=f"dask-cli-kept-alive-{time.time()}",
                    close=False,
                ),
                5,
            )
        except Exception as exc:  # the scheduler is gone: nothing to tell
            logger.debug("Kept-alive state not published to the scheduler: %r", exc)

    def state(self) -> dict | None:
        if self.kept is None:
            return None
        return {"reason": self.kept.reason, "since": self.kept.since}


def _get(worker: Worker) -> WorkerKeepalive | None:
    found = features.get(worker, WorkerKeepalive.name)
    return found if isinstance(found, WorkerKeepalive) else None


def install(worker: Worker) -> None:
    """Intercept the worker's close paths and register the feature (idempotent).
    Keepalive itself follows the ``cli.keepalive.enabled`` config and can be switched
    later (``dask worker keepalive NAME on|off``)."""
    from dask.utils import parse_timedelta

    from dask_cli import config

    if _get(worker) is not None:
        return
    timeout = config.get("keepalive.timeout")
    state = WorkerKeepalive(
        worker,
        enabled=bool(config.get("keepalive.enabled", False)),
        timeout=parse_timedelta(timeout) if timeout else None,
    )
    features.register(worker, state)
    worker.close = state.close  # type: ignore[method-assign]
    # These tables captured the bound method in Worker.__init__.
    for table in (worker.handlers, worker.stream_handlers):
        for op in ("close", "terminate"):
            if op in table:
                table[op] = state.close


def release(worker: Worker) -> None:
    """Let a kept-alive worker exit (``dask worker release``); its nanny exits with it."""
    from dask_cli.errors import DaskCliError

    state = _get(worker)
    if state is None or state.kept is None:
        raise DaskCliError(
            f"Worker {worker.name!r} is not kept alive",
            hint="Only kept-alive workers can be released; stop a running worker with "
            "SIGTERM, or client.retire_workers().",
        )
    # A moment later, so the shell service can answer this request before it stops.
    _on_loop(worker, state.exit, delay=0.2)
    # A release must work while the event loop is blocked (that may be why the worker
    # is being inspected): if the loop does not close the worker in time, exit hard.
    # The nanny treats exit code 0 of a kept-alive worker as released, not as a crash.
    watchdog = threading.Timer(RELEASE_GRACE_SECONDS, _exit_process, args=(worker,))
    watchdog.daemon = True
    watchdog.start()


def state(worker: Worker) -> dict | None:
    """None when the worker is not kept alive, else ``{"reason": str, "since": float}``."""
    found = _get(worker)
    return None if found is None else found.state()


def enabled(worker: Worker) -> bool:
    found = _get(worker)
    return bool(found and found.enabled)


def _on_loop(worker: Worker, coroutine_function: Any, delay: float = 0.0) -> None:
    """Run ``coroutine_function()`` on the worker's loop (after ``delay`` s), from any thread."""
    if delay:
        worker.loop.add_callback(lambda: worker.loop.call_later(delay, coroutine_function))
    else:
        worker.loop.add_callback(coroutine_function)


def _exit_process(worker: Worker) -> None:
    import os

    from distributed.core import Status

    if worker.status == Status.closed:
        return
    logger.warning("Kept-alive worker did not close in %ss; exiting now", RELEASE_GRACE_SECONDS)
    logging.shutdown()
    os._exit(0)
