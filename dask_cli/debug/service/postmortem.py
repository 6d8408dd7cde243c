"""Live tracebacks of failed tasks, and ``failed()`` / ``pm(key)`` in the shell.

distributed keeps only a pickled copy of a failed task's traceback (tblib: no
frames, no locals). The live exception exists in one place: the result dict of
``distributed.worker._run_task_simple`` / ``_run_task_async``
(``msg["actual_exception"]``), which ``Worker.execute`` turns into an
``ExecuteFailureEvent`` and drops. Every task (thread pool or async) runs
through one of those two module functions, looked up as globals at call time,
so wrapping them is the smallest hook that sees every failure; the worker that
ran the task is distributed's own ``_worker_cvar`` (what ``get_worker()`` reads).

Each worker keeps a bounded deque (``cli.postmortem.max-failures``, default
100) of failures, registered as its ``postmortem`` shell feature; recording
happens while the installer's ``recording`` test says so (keepalive enabled,
see :mod:`dask_cli.debug.service.install`), or always with
``cli.postmortem.always``. A kept exception keeps its frames and their locals
alive, which is the point, and also why the registry is bounded.
"""

from __future__ import annotations

import collections
import functools
import pdb
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from dask_cli.debug.service import features
from dask_cli.debug.service.helpers import missing_source

if TYPE_CHECKING:
    from distributed import Worker

_patch_lock = threading.Lock()


@dataclass
class Failure:
    """One failed task: its key, the live exception (with ``__traceback__``), when."""

    key: Any
    exception: BaseException
    time: float

    @property
    def traceback(self) -> TracebackType | None:
        return self.exception.__traceback__

    def __repr__(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.time))
        return f"<Failure {self.key!r} at {when}: {self.exception!r}>"


class FailureRegistry(features.ShellFeature):
    """The last ``maxlen`` failures of one worker (a deque: old ones drop off); in
    the shell, ``failed()`` and ``pm(key)``."""

    name = "postmortem"

    def __init__(
        self,
        worker: Worker,
        maxlen: int,
        always: bool,
        recording: Callable[[], bool] = lambda: False,
    ):
        self.worker = worker
        self.always = always
        self._recording = recording
        self.failures: collections.deque[Failure] = collections.deque(maxlen=max(1, maxlen))
        self._lock = threading.Lock()

    @property
    def recording(self) -> bool:
        return self.always or self._recording()

    def helpers(self) -> dict[str, features.HelperFactory]:
        return {"failed": lambda session: self.failed, "pm": lambda session: self.pm}

    def failed(self) -> FailureList:
        """Failed tasks whose live frames were kept (key, exception, time), oldest first."""
        return FailureList(self.list())

    def pm(self, key: Any = None, commands: list[str] | None = None) -> None:
        """Open pdb on the live frames of the failed task ``key`` (default: the last).
        ``commands``: pdb commands to run first (for scripts: end with "q")."""
        post_mortem(self.find(key), commands)

    def record(self, key: Any, exception: BaseException) -> None:
        if not self.recording:
            return
        with self._lock:
            self.failures.append(Failure(key=key, exception=exception, time=time.time()))

    def list(self) -> list[Failure]:
        with self._lock:
            return list(self.failures)

    def find(self, key: Any = None) -> Failure:
        """The failure of ``key`` (a key or its str), the last one when ``key`` is None."""
        failures = self.list()
        if not failures:
            raise LookupError(
                "No failed task recorded on this worker (recorded while keepalive is on, "
                "or always with config cli.postmortem.always)"
            )
        if key is None:
            return failures[-1]
        for failure in reversed(failures):
            if failure.key == key or str(failure.key) == str(key):
                return failure
        matches = [f for f in failures if str(f.key).startswith(str(key))]
        if len({str(f.key) for f in matches}) == 1:
            return matches[-1]
        known = ", ".join(repr(f.key) for f in failures[-10:])
        raise LookupError(f"No recorded failure for {key!r}; recorded: {known}")

    def clear(self) -> None:
        with self._lock:
            self.failures.clear()


def registry(worker: Worker) -> FailureRegistry | None:
    found = features.get(worker, FailureRegistry.name)
    return found if isinstance(found, FailureRegistry) else None


def install(worker: Worker, recording: Callable[[], bool] = lambda: False) -> None:
    """Give ``worker`` a failure registry and hook task execution (both idempotent).
    ``recording()``: whether to keep failures now (besides ``cli.postmortem.always``)."""
    from dask_cli import config

    if registry(worker) is None:
        features.register(
            worker,
            FailureRegistry(
                worker,
                maxlen=int(config.get("postmortem.max-failures", 100)),
                always=bool(config.get("postmortem.always", False)),
                recording=recording,
            ),
        )
    _patch_distributed()


def _record(msg: dict, task: Any) -> None:
    from distributed.worker import _worker_cvar

    if msg.get("op") != "task-erred" or "actual_exception" not in msg:
        return
    worker = _worker_cvar.get(None)
    found = registry(worker) if worker is not None else None
    if found is not None:
        found.record(getattr(task, "key", None), msg["actual_exception"])


def _patch_distributed() -> None:
    """Wrap distributed's two task runners once per process."""
    import distributed.worker as dw

    with _patch_lock:
        if getattr(dw._run_task_simple, "_dask_cli_postmortem", False):
            return
        simple, run_async = dw._run_task_simple, dw._run_task_async

        @functools.wraps(simple)
        def _run_task_simple(task, data, time_delay):  # noqa: ANN001, ANN202
            msg = simple(task, data, time_delay)
            try:
                _record(msg, task)
            except Exception:  # never break task execution
                pass
            return msg

        @functools.wraps(run_async)
        async def _run_task_async(task, data, time_delay):  # noqa: ANN001, ANN202
            msg = await run_async(task, data, time_delay)
            try:
                _record(msg, task)
            except Exception:
                pass
            return msg

        _run_task_simple._dask_cli_postmortem = True  # type: ignore[attr-defined]
        dw._run_task_simple = _run_task_simple
        dw._run_task_async = _run_task_async


# --- in the shell -------------------------------------------------------------


class FailureList(list):
    """What ``failed()`` returns: a list of ``Failure``, shown as a small table."""

    def __repr__(self) -> str:
        if not self:
            return "(no failed tasks recorded)"
        lines = []
        for failure in self:
            when = time.strftime("%H:%M:%S", time.localtime(failure.time))
            text = traceback.format_exception_only(type(failure.exception), failure.exception)
            lines.append(f"{when}  {failure.key!s}  {text[-1].strip()}")
        return "\n".join(lines)


class _Pdb(pdb.Pdb):
    """pdb whose ``list``/``longlist`` say why a frame has no source (by-value code from
    cloudpickle has none on the worker), with what is still known of the frame."""

    def _no_source(self) -> bool:
        frame = self.curframe
        reason = missing_source(frame.f_code.co_filename, frame.f_globals)
        if reason is None:
            return False
        code = frame.f_code
        name = getattr(code, "co_qualname", code.co_name)
        self.message(
            f"No source for {name} (line {frame.f_lineno}): {reason}. "
            f"Its locals: {', '.join(self.curframe_locals) or 'none'} (p NAME shows one)."
        )
        return True

    def do_list(self, arg: str) -> None:
        if not self._no_source():
            super().do_list(arg)

    do_l = do_list

    def do_longlist(self, arg: str) -> None:
        if not self._no_source():
            super().do_longlist(arg)

    do_ll = do_longlist


def post_mortem(failure: Failure, commands: list[str] | None = None) -> None:
    """pdb on the failure's live frames, starting at the frame that raised.

    ``commands`` are run first, as if typed (pdb's own ``cmdqueue``): scripted
    inspection without a terminal, e.g. ``pm(key, commands=["p locals()", "q"])``.

    pdb reads with ``input()`` and writes to ``sys.stdout``: inside a shell session
    both are routed to that session's client. ``nosigint``: pdb must not install
    signal handlers from a session thread.
    """
    tb = failure.traceback
    if tb is None:
        raise LookupError(f"The failure of {failure.key!r} has no traceback")
    print(f"Post-mortem of {failure.key!s}: {failure.exception!r}")
    print("(pdb: p NAME, where, up, down, list; q returns to the shell)")
    debugger = _Pdb(nosigint=True)
    # As pdb.post_mortem does, on an explicit traceback.
    debugger.reset()
    debugger.cmdqueue.extend(commands or [])
    debugger.interaction(None, tb)
    sys.settrace(None)
