"""Breakpoints in tasks: ``breakpoint()`` pauses the task's thread until a debugger attaches.

Inside a worker with the toolkit, ``breakpoint()`` (and ``pdb.set_trace()``) in code that
runs as a task does not read the worker's stdin (which nobody sees); it registers a
*pause* and blocks that task's thread only:

- the pause (key, worker, file:line, since) is listed by ``paused()`` in the shell and
  published in the scheduler's metadata (``[METADATA_KEY, PAUSED_KEY, worker address]``
  of :mod:`~dask_cli.debug.protocol`) for ``dask worker debug``; one worker log line
  and one scheduler event (``BREAKPOINT_EVENT``) give the exact command to attach;
- the thread leaves the worker's thread pool (as ``distributed.secede()`` does), so the
  worker runs its other tasks at full width, keeps heartbeating, and the scheduler
  sees the task as still running (long-running), never lost;
- ``debug(key)`` in a shell session attaches: pdb then runs *in the task's thread*, on
  the paused frame, reading commands from and writing to that session (its
  ``SessionOutput``: the same routing ``pm(key)`` uses), so ``next``/``step``/``until``
  work as locally; ``continue`` resumes the task, and so do ``quit``, end of input and
  a client that goes away: only ``kill`` makes the task fail;
- nobody attaching within ``cli.debug.breakpoint-timeout`` (default 5 minutes; 0 skips
  breakpoints altogether) lets the task continue, and the log says so.

Code outside a task (a shell session, a thread a task started, the worker itself)
keeps the breakpoint hook it had; ``PYTHONBREAKPOINT=0`` turns breakpoints off and
another ``PYTHONBREAKPOINT`` debugger is honoured. A ``breakpoint()`` in an ``async``
task is skipped with a log line: pausing there would stop the worker's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pdb
import secrets
import shlex
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from dask_cli.debug import protocol
from dask_cli.debug.service import features
from dask_cli.debug.service.helpers import Table
from dask_cli.debug.service.task_pdb import Attachment, TaskPdb
from dask_cli.errors import DaskCliError

if TYPE_CHECKING:
    from distributed import Worker


# A child of "distributed.worker": the line reaches the worker's stderr and its log
# deque (``dask worker logs``) with distributed's formatting, as keepalive's do.
logger = logging.getLogger("distributed.worker.dask_cli")

TIMEOUT_KEY = "debug.breakpoint-timeout"
DEFAULT_TIMEOUT = "5 minutes"
# How often a waiting thread looks at its deadline and a waiting ``debug()`` at its
# pause: short enough that an interrupt of the session lands promptly.
WAIT_SLICE = 0.2

_install_lock = threading.Lock()
_previous_hook: Callable[..., Any] | None = None


class NotPaused(DaskCliError):
    """No paused task matches what was asked for (or it resumed meanwhile)."""


class AlreadyAttached(DaskCliError):
    """Another debugger is attached to that pause."""


@dataclass
class Pause:
    """One task stopped at ``breakpoint()``, waiting in its own thread."""

    key: Any
    worker_name: str
    worker_address: str
    filename: str
    lineno: int
    function: str
    frame: FrameType = field(repr=False)
    thread_id: int = 0
    since: float = field(default_factory=time.time)
    header: str | None = None
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    attachment: Attachment | None = None
    started: bool = False  # the attached debugger may begin (set by ``start``)
    cancelled: bool = False  # the worker closes: go on without a debugger
    cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def where(self) -> str:
        return f"{self.filename}:{self.lineno}"

    def to_record(self) -> dict[str, Any]:
        """What the scheduler's metadata and ``dask worker debug --json`` show."""
        return {
            "id": self.id,
            "key": str(self.key),
            "worker": self.worker_name,
            "address": self.worker_address,
            "file": self.filename,
            "line": self.lineno,
            "function": self.function,
            "since": self.since,
            "attached": self.attachment.who if self.attachment is not None else None,
        }

    # --- the attaching session's side ------------------------------------------

    def claim(self, attachment: Attachment) -> None:
        with self.cond:
            if self.attachment is not None:
                raise AlreadyAttached(
                    f"Task {str(self.key)!r} is already being debugged by "
                    f"{self.attachment.who} (since {_clock(self.attachment.since)})",
                    hint="One debugger per pause: wait until that session ends.",
                )
            self.attachment = attachment

    def unclaim(self, attachment: Attachment) -> None:
        with self.cond:
            if self.attachment is attachment and not self.started:
                self.attachment = None

    def start(self) -> None:
        with self.cond:
            self.started = True
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()

    # --- the task's side -------------------------------------------------------

    def wait_for_debugger(self, timeout: float) -> Attachment | None:
        """The attachment once a debugger started, or None after ``timeout`` seconds
        without one (a claimed pause waits for its debugger to start, however long)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.started:
                if self.cancelled or (self.attachment is None and time.monotonic() >= deadline):
                    return None
                self.cond.wait(WAIT_SLICE)
            return self.attachment


class Breakpoints(features.ShellFeature):
    """The pauses of one worker: the feature behind ``paused()``, ``debug(key)`` and
    completion in an attached debugger (``protocol.DebugComplete``)."""

    name = "breakpoints"

    def __init__(self, worker: Worker):
        self.worker = worker
        # session → the attachment it is running (for its completion requests)
        self._attached: weakref.WeakKeyDictionary[Any, Attachment] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._pauses: dict[str, Pause] = {}
        # thread id → the debugger attached in that thread (a later breakpoint() there
        # stops in the same session instead of pausing again)
        self._debuggers: dict[int, TaskPdb] = {}
        self._publish_lock: Any = None  # an asyncio.Lock, made on the worker's loop
        self.closed = False

    # --- the feature's hooks -----------------------------------------------------

    def helpers(self) -> Mapping[str, features.HelperFactory]:
        return {"paused": lambda session: self.paused, "debug": self._debug_helper}

    def requests(self) -> Mapping[type[protocol.Request], features.RequestHandler]:
        return {protocol.DebugComplete: self.complete}

    def close(self) -> None:
        self.release_all()

    def paused(self) -> Table:
        """Tasks paused at breakpoint() on this worker: key, where, since, attached."""
        rows = [
            (p.key, p.where, p.function, _clock(p.since), p.attachment and p.attachment.who)
            for p in self.list()
        ]
        return Table(["key", "where", "function", "since", "attached"], rows)

    def _debug_helper(self, session: Any) -> Callable[..., None]:
        def debug(key: Any = None) -> None:
            """Attach pdb to the task paused at ``key`` (default: the only one). continue,
            quit or Ctrl-D resume the task; kill stops it."""
            self.attach(key, session)

        return debug

    async def complete(self, request: protocol.DebugComplete, session: Any) -> list[dict]:
        """Completions against the current frame of the debugger ``session`` attached."""
        from dask_cli.debug.service import completion

        attachment = self._attached.get(session)
        if attachment is None:
            raise DaskCliError("This session is not attached to a paused task")
        found = await asyncio.get_running_loop().run_in_executor(
            None, completion.complete, request.source, request.cursor, attachment.namespace
        )
        return [vars(c) for c in found]

    def list(self) -> list[Pause]:
        with self._lock:
            return sorted(self._pauses.values(), key=lambda p: p.since)

    def find(self, query: Any = None) -> Pause:
        """The pause of ``query``: a key, its str, a pause id, or an unambiguous prefix of
        a key; None is the only pause there is."""
        pauses = self.list()
        if not pauses:
            raise NotPaused(f"No task is paused at a breakpoint on worker {self._name()}")
        if query is None:
            if len(pauses) == 1:
                return pauses[0]
            raise NotPaused(f"{len(pauses)} tasks are paused here: {_keys(pauses)}; name one")
        for exact in (
            lambda p: p.key == query,
            lambda p: str(p.key) == str(query) or p.id == str(query),
        ):
            found = [p for p in pauses if _safe(exact, p)]
            if found:
                return found[0]
        matches = [p for p in pauses if str(p.key).startswith(str(query))]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise NotPaused(f"{query!r} matches several paused tasks: {_keys(matches)}")
        raise NotPaused(f"Task {str(query)!r} is not paused here; paused: {_keys(pauses)}")

    def attach(self, query: Any, session: Any) -> str:
        """Run a debugger on the pause ``query`` through ``session`` (the caller's); return
        how it ended. Blocks the session's thread while pdb runs in the task's."""
        from dask_cli.debug.service.streams import current_output

        output = current_output.get()
        if output is None:
            raise DaskCliError("debug() needs a shell session (dask worker shell / debug)")
        pause = self.find(query)
        attachment = Attachment(output=output, who=_who(session))
        pause.claim(attachment)
        try:
            self._run_attached(pause, attachment, session)
        finally:
            pause.unclaim(attachment)  # only when it never started (the print failed)
        print(f"Task {str(pause.key)!r} {_outcome_words(attachment.outcome)}.", flush=True)
        return attachment.outcome

    def _run_attached(self, pause: Pause, attachment: Attachment, session: Any) -> None:
        print(
            f"Attached to task {str(pause.key)!r} on worker {pause.worker_name}, paused at "
            f"{pause.where} ({pause.function}) since {_clock(pause.since)}.\n"
            "pdb: p NAME, pp, where, up, down, list, next, step; continue or quit resumes "
            "the task, kill stops it.",
            flush=True,
        )
        if session is not None:
            self._attached[session] = attachment
        try:
            pause.start()
            while not attachment.ended.wait(WAIT_SLICE):
                pass
        except BaseException:
            # The session was interrupted or left: pdb sees the end of input at its next
            # prompt (the output is closed) and resumes the task; stop any stepping now.
            _detach(attachment)
            raise
        finally:
            if session is not None:
                self._attached.pop(session, None)

    # --- in the task's thread --------------------------------------------------

    def pause(self, frame: FrameType, key: Any, timeout: float, header: str | None) -> None:
        """Register a pause at ``frame``, wait for a debugger, and hand it the frame.

        Returns when the task may go on: at once after ``set_trace`` when a debugger
        attached (pdb then stops at the task's next line), or after the timeout."""
        existing = self._debuggers.get(threading.get_ident())
        if existing is not None and not existing.attachment.ended.is_set():
            existing.stop_at(frame)  # already debugging this thread: stop in that session
            return
        pause = Pause(
            key=key,
            worker_name=self._name(),
            worker_address=self.worker.address,
            filename=frame.f_code.co_filename,
            lineno=frame.f_lineno,
            function=frame.f_code.co_name,
            frame=frame,
            thread_id=threading.get_ident(),
            header=header,
        )
        with self._lock:
            self._pauses[pause.id] = pause
        self._announce(pause, timeout)
        _leave_thread_pool(self.worker, key)
        try:
            attachment = pause.wait_for_debugger(timeout)
        except BaseException:
            self._forget(pause)
            raise
        if attachment is None or self.closed:
            self._forget(pause)
            why = (
                "the worker is closing"
                if self.closed
                else (f"nobody attached within {_duration(timeout)} (cli.{TIMEOUT_KEY})")
            )
            logger.warning("Task %r continues from its breakpoint: %s", str(key), why)
            return
        self._publish()  # now shown as attached
        debugger = TaskPdb(attachment, key, lambda debugger: self.finished(pause, debugger))
        self._debuggers[pause.thread_id] = debugger
        debugger.start(frame, pause.header)  # the last call: pdb traces from here on

    def finished(self, pause: Pause, debugger: TaskPdb) -> None:
        """The debugger let the task go (continue, quit, kill, detach, it returned)."""
        if self._debuggers.get(pause.thread_id) is debugger:
            del self._debuggers[pause.thread_id]
        self._forget(pause)
        logger.info(
            "Task %r resumed from its breakpoint (%s)", str(pause.key), debugger.attachment.outcome
        )

    def _forget(self, pause: Pause) -> None:
        with self._lock:
            self._pauses.pop(pause.id, None)
        self._publish()

    def _announce(self, pause: Pause, timeout: float) -> None:
        command = self.attach_command(pause)
        logger.warning(
            "Task %r paused at breakpoint() in %s (%s) on worker %s. Attach with: %s "
            "(it continues by itself after %s)",
            str(pause.key),
            pause.where,
            pause.function,
            pause.worker_name,
            command,
            _duration(timeout),
        )
        event = {**pause.to_record(), "command": command, "action": "paused"}
        self._on_worker_loop(lambda: self.worker.log_event(protocol.BREAKPOINT_EVENT, event))
        self._publish()

    def attach_command(self, pause: Pause) -> str:
        scheduler = getattr(getattr(self.worker, "scheduler", None), "address", None)
        command = f"dask worker debug {shlex.quote(str(pause.key))}"
        return f"{command} --scheduler {scheduler}" if scheduler else command

    def _publish(self) -> None:
        """Send this worker's pauses to the scheduler (in order: the last call wins)."""
        worker = self.worker

        async def send() -> None:
            if self._publish_lock is None:
                self._publish_lock = asyncio.Lock()
            async with self._publish_lock:
                records = [p.to_record() for p in self.list()]
                try:
                    await worker.scheduler.set_metadata(
                        keys=[protocol.METADATA_KEY, protocol.PAUSED_KEY, worker.address],
                        value=records,
                    )
                except Exception:
                    logger.debug("dask-cli: could not publish paused tasks", exc_info=True)

        self._on_worker_loop(send)

    def _on_worker_loop(self, callback: Callable[[], Any]) -> None:
        try:
            self.worker.loop.add_callback(callback)
        except Exception:  # the loop is closed: the worker is gone
            logger.debug("dask-cli: worker loop unavailable", exc_info=True)

    def _name(self) -> str:
        return str(self.worker.name)

    # --- the worker closes -------------------------------------------------------

    def release_all(self) -> None:
        """Let every waiting task go (the worker is closing): nobody can attach any more."""
        self.closed = True
        for pause in self.list():
            pause.cancel()


# --- the hook ------------------------------------------------------------------------


def breakpointhook(*args: Any, **kwargs: Any) -> Any:
    """``sys.breakpointhook``: pause a task's thread; anything else as before."""
    setting = os.environ.get("PYTHONBREAKPOINT")
    if setting == "0":
        return None
    found = _current_task()
    if found is None or (setting and setting != "pdb.set_trace"):
        return (_previous_hook or sys.__breakpointhook__)(*args, **kwargs)
    registry, key = found
    return _pause(registry, key, sys._getframe(1), kwargs.get("header"))


def set_trace(*, header: str | None = None) -> None:
    """``pdb.set_trace``: in a task, pause like ``breakpoint()``; elsewhere pdb's own
    (re-implemented: calling pdb's would start debugging in this function's frame)."""
    found = _current_task()
    if found is None:
        debugger = pdb.Pdb()
        if header is not None:
            debugger.message(header)
        debugger.set_trace(sys._getframe(1))
        return
    registry, key = found
    _pause(registry, key, sys._getframe(1), header)


def _pause(registry: Breakpoints, key: Any, frame: FrameType, header: str | None) -> None:
    timeout = breakpoint_timeout()
    if timeout <= 0:
        return
    if key is None:  # an async task, on the worker's event loop
        logger.warning(
            "breakpoint() in an async task skipped: it runs on the worker's event loop, "
            "and pausing it would stop the worker (%s:%d)",
            frame.f_code.co_filename,
            frame.f_lineno,
        )
        return
    registry.pause(frame, key, timeout, header)


def _current_task() -> tuple[Breakpoints, Any] | None:
    """(this worker's breakpoints, the task's key) when the caller runs a task."""
    from distributed.worker import _worker_cvar, thread_state

    state = getattr(thread_state, "execution_state", None)
    worker = state.get("worker") if isinstance(state, dict) else _worker_cvar.get(None)
    if worker is None:
        return None
    found = registry(worker)
    if found is None:
        return None
    key = getattr(thread_state, "key", None)
    if key is None and not _on_event_loop(worker):
        return None
    return found, key


def _on_event_loop(worker: Any) -> bool:
    loop = getattr(getattr(worker, "loop", None), "asyncio_loop", None)
    return loop is not None and getattr(loop, "_thread_id", None) == threading.get_ident()


def _leave_thread_pool(worker: Any, key: Any) -> None:
    """``distributed.secede()``: the worker runs another task in this thread's place while
    it waits. Not for actors (their own executor) or a thread that already seceded."""
    from distributed import secede
    from distributed.threadpoolexecutor import thread_state as pool_state
    from distributed.worker import thread_state

    if getattr(thread_state, "actor", False) or not getattr(pool_state, "proceed", False):
        return
    try:
        secede()
    except Exception:
        logger.debug("dask-cli: task %r could not secede", str(key), exc_info=True)


def breakpoint_timeout() -> float:
    """``cli.debug.breakpoint-timeout`` in seconds (0: breakpoints are skipped)."""
    from dask.utils import parse_timedelta

    from dask_cli import config

    value = config.get(TIMEOUT_KEY, DEFAULT_TIMEOUT)
    if value in (None, False, 0, "0"):
        return 0.0
    try:
        return float(parse_timedelta(value, default="s") or 0)
    except (TypeError, ValueError):
        logger.warning("Bad cli.%s %r; using %s", TIMEOUT_KEY, value, DEFAULT_TIMEOUT)
        return float(parse_timedelta(DEFAULT_TIMEOUT))


# --- installing ----------------------------------------------------------------------


def registry(worker: Any) -> Breakpoints | None:
    found = features.get(worker, Breakpoints.name)
    return found if isinstance(found, Breakpoints) else None


def install(worker: Worker) -> Breakpoints:
    """Register the feature on ``worker`` and put our hooks in place (both idempotent).

    The hooks are process-wide and stay: they hand anything that is not a task of a
    worker with this feature to the hook that was there before."""
    global _previous_hook

    found = features.register(worker, Breakpoints(worker))
    with _install_lock:
        if sys.breakpointhook is not breakpointhook:
            _previous_hook = sys.breakpointhook
            sys.breakpointhook = breakpointhook
        pdb.set_trace = set_trace
    return found


def _detach(attachment: Attachment) -> None:
    debugger = attachment.debugger
    if debugger is not None and not attachment.ended.is_set():
        debugger.clear_all_breaks()
        debugger._set_stopinfo(debugger.botframe, None, -1)


def _outcome_words(outcome: str) -> str:
    return {
        "killed": "was stopped (it fails with TaskKilled)",
        "the task's function returned": "finished under the debugger",
    }.get(outcome, f"resumed ({outcome})")


def _who(session: Any) -> str:
    client = getattr(session, "client", None) or {}
    user, host = client.get("user"), client.get("host")
    if user and host:
        return f"{user}@{host}"
    return str(user or host or getattr(session, "id", None) or "a shell session")


def _safe(test: Callable[[Pause], bool], pause: Pause) -> bool:
    try:
        return bool(test(pause))
    except Exception:  # a key whose == raises
        return False


def _keys(pauses: list[Pause]) -> str:
    return ", ".join(repr(str(p.key)) for p in pauses[:10]) + (" ..." if len(pauses) > 10 else "")


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} s"
