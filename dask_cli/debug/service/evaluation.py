"""Evaluating one ``eval`` request: compiling it, the thread that runs plain code, and
the one small piece of state that thread and the service's loop share.

Ctrl-C must stop plain code (a Python loop, ``time.sleep`` after it returns, a
``print`` loop, ``input()``) on the thread that runs it. The only way is an
exception raised asynchronously in that thread (``PyThreadState_SetAsyncExc``), and
such an exception arrives at whatever bytecode the thread runs next. So
:class:`UserCode` delivers it only while the thread is in the user's code (once per
Ctrl-C, and again every ``INTERRUPT_REPEAT`` while the code still runs: one that
lands in a finalizer or a weakref callback is only printed as "Exception ignored"),
and clears any undelivered one when the code returns; everything
the service itself runs on that thread while the code is in progress (the output
path of ``print``, ``input()``) holds no lock the service's loop needs
(:mod:`dask_cli.debug.service.streams`), and everything after the code returned
cannot receive it. Code that ignores it (a long C call, ``except BaseException``) is
given up on after ``INTERRUPT_GRACE``: its thread is abandoned, never reused.

Code with top-level ``await`` only makes a coroutine here; the session awaits it on
the server's own loop, where Ctrl-C cancels it.

While plain code runs, the interpreter's switch interval is shortened
(:class:`SwitchInterval`): a thread in a tight Python loop otherwise keeps the GIL
for 5 ms before the service's loop may run one step, and a fresh session, an
interrupt or ``dask worker stack`` take several such steps. A thread whose code
floods output is also given a lower CPU priority (:meth:`EvalThread.demote`).
"""

from __future__ import annotations

import _thread
import ast
import asyncio
import collections
import contextlib
import contextvars
import ctypes
import inspect
import itertools
import linecache
import os
import queue
import sys
import threading
import traceback
import types
from dataclasses import dataclass, field
from typing import Any

from dask_cli.debug.service.streams import SessionOutput, current_output, install_routing

# After an interrupt, answer "interrupted" this soon even if the code has not stopped
# (a C call such as time.sleep cannot be broken from another thread).
INTERRUPT_GRACE = 0.5
# Raise the interrupt again this often while the code still runs, this many times.
INTERRUPT_REPEAT = INTERRUPT_GRACE / 2
INTERRUPT_REPEATS = 40
# The niceness of an eval thread whose code floods output (``EvalThread.demote``).
FLOOD_NICENESS = 19

# Distinct sources whose ``<shell-N>`` name and lines are kept (``ShellSources``).
MAX_SHELL_SOURCES = 1000
_shell_numbers = itertools.count(1)  # one series per process: names share linecache


class SwitchInterval:
    """``sys.setswitchinterval(RESPONSIVE)`` while any eval's plain code runs, and back to
    what it was when the last one ends.

    A print loop in the shell held the GIL for the default 5 ms each time the
    service's loop asked for it: a fresh session after Ctrl-C took 34 ms instead of
    3 ms (``benchmarks/recovery.py``), 8 ms with 0.5 ms; with 0.1 ms a fresh session
    after a dropped client or a Ctrl-C is faster again (median 1.44x and 1.57x of an
    untouched worker's, against 1.53x and 1.93x), and printing streams as fast (a
    thread asks for the GIL only when it has work). Only while shell code runs, so
    a worker nobody debugs keeps its interpreter exactly as configured (code that
    ignored its interrupt and was abandoned still counts until it returns); a value
    the user's code set meanwhile is left alone."""

    RESPONSIVE = 0.0001

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved: float | None = None
        self._applied: float | None = None  # as the interpreter reads it back

    def enter(self) -> None:
        with self._lock:
            self._running += 1
            if self._running == 1:
                current = sys.getswitchinterval()
                if current > self.RESPONSIVE:
                    self._saved = current
                    sys.setswitchinterval(self.RESPONSIVE)
                    # Held in whole microseconds: 0.0001 reads back as 9.999...e-05.
                    self._applied = sys.getswitchinterval()

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._saved is not None:
                if sys.getswitchinterval() == self._applied:
                    sys.setswitchinterval(self._saved)
                self._saved = None


switch_interval = SwitchInterval()


@dataclass
class Outcome:
    """How an eval ended: ``status`` as in ``protocol.Result``; ``coroutine``: top-level
    await code, still to be awaited on the server's loop; ``exit_code`` for ``exit``."""

    status: str
    value: str | None = None
    traceback: str | None = None
    coroutine: Any = None
    expression: bool = False  # with ``coroutine``: show the awaited value
    exit_code: int = 0


class UserCode:
    """Whether an eval's thread runs the user's code, and the one way to interrupt it.

    The state the eval's thread and the service's loop share, all of it: the
    ``_switch`` lock makes "check ``running``, raise" (the loop) atomic against
    "enter/leave the code" (the thread). The loop only ever tries the lock without
    blocking; the thread takes it for a few bytecodes. ``requested`` is written by
    the loop only.
    """

    __slots__ = ("_switch", "_thread", "running", "requested", "_raised")

    def __init__(self) -> None:
        self._switch = _thread.allocate_lock()
        self._thread: int | None = None
        self.running = False
        self.requested = False
        self._raised = False

    # --- on the eval's thread -------------------------------------------------

    def enter(self) -> bool:
        """Before the code runs; False when the interrupt came first (do not run it)."""
        with self._switch:
            if self.requested:
                return False
            self._thread = threading.get_ident()
            self.running = True
            return True

    def leave(self) -> None:
        """After the code returned or raised: no interrupt can arrive from now on."""
        with self._switch:
            self.running = False
            if self._raised and self._thread is not None:
                # Raised but not yet delivered: never let it reach the service's code.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread), None)

    # --- on the service loop --------------------------------------------------

    def interrupt(self, again: bool = False) -> bool | None:
        """Raise KeyboardInterrupt in the code if it runs now. True: raised (or raised
        before, unless ``again``); False: not running; None: the thread is switching,
        try again soon."""
        self.requested = True
        if not self._switch.acquire(False):
            return None
        try:
            if not self.running or self._thread is None:
                return False
            if again or not self._raised:
                self._raised = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread), ctypes.py_object(KeyboardInterrupt)
                )
            return True
        finally:
            self._switch.release()


@dataclass(eq=False)
class EvalJob:
    """The thread's half of one eval: compile, run the code under :class:`UserCode`,
    and hand the :class:`Outcome` to the service loop through ``on_done``."""

    source: str
    mode: str
    filename: str
    namespace: dict[str, Any]
    output: SessionOutput
    loop: asyncio.AbstractEventLoop
    on_done: Any
    user_code: UserCode = field(default_factory=UserCode)
    compiled_filename: str = ""  # the filename, ``<shell>`` made ``<shell-N>``

    def __post_init__(self) -> None:
        self.compiled_filename = self.filename

    def run(self) -> None:
        """Never raises: whatever happens is the outcome."""
        token = current_output.set(self.output)
        try:
            outcome = self._execute()
        except BaseException:  # the interrupt, between the code's end and ``leave``
            outcome = Outcome("interrupted")
        finally:
            current_output.reset(token)
        with contextlib.suppress(RuntimeError):  # the service loop is closed
            self.loop.call_soon_threadsafe(self.on_done, outcome, context=contextvars.Context())

    def _execute(self) -> Outcome:
        filename = self.filename
        if filename == "<shell>":
            filename = shell_sources.name(self.source)
        else:  # a script: its lines under its own name, replaced by its next run
            linecache.cache[filename] = _lines_entry(self.source, filename)
        self.compiled_filename = filename
        install_routing()  # again: something (a test runner, a task) may have replaced it
        try:
            code, is_expression = compile_source(self.source, self.mode, filename)
        except (SyntaxError, ValueError, OverflowError) as exc:
            return Outcome("error", traceback="".join(traceback.format_exception_only(exc)))
        self.output.waiting_thread = threading.get_ident()
        switch_interval.enter()  # outside UserCode: no interrupt can land in its lock
        try:
            if not self.user_code.enter():
                return Outcome("interrupted")
            try:
                return self._run_user_code(code, is_expression, filename)
            finally:
                self._leave()
        finally:
            switch_interval.leave()

    def _leave(self) -> None:
        """``UserCode.leave``, surely: an interrupt raised just before it may land on its
        first line, and a ``running`` left True would let the next ones reach the
        service's code on this thread."""
        while True:
            try:
                self.user_code.leave()
                return
            except BaseException:  # that interrupt: leave again
                continue

    def _run_user_code(self, code: types.CodeType, is_expression: bool, filename: str) -> Outcome:
        """Inside ``UserCode.enter/leave``: the interrupt may arrive anywhere here."""
        try:
            value = types.FunctionType(code, self.namespace)()
            if code.co_flags & inspect.CO_COROUTINE:
                return Outcome("ok", coroutine=value, expression=is_expression)
            return value_outcome(value, is_expression, self.namespace)
        except BaseException as exc:
            return raised_outcome(exc, filename)


def value_outcome(value: Any, expression: bool, namespace: dict[str, Any]) -> Outcome:
    """What the code returned: an expression's value is shown and kept as ``_``
    (plain code here, top-level await code on the server's loop)."""
    if not expression or value is None:
        return Outcome("ok")
    namespace["_"] = value
    return Outcome("ok", value=repr(value))


def raised_outcome(exc: BaseException, filename: str) -> Outcome:
    """What the code raised: ``exit()``, Ctrl-C, or an error with its traceback."""
    if isinstance(exc, SystemExit):
        return exit_outcome(exc)
    if isinstance(exc, KeyboardInterrupt):
        return Outcome("interrupted")
    return Outcome("error", traceback=format_exception(exc, filename))


def exit_outcome(exc: SystemExit) -> Outcome:
    """``SystemExit`` as ``python`` treats it: None is 0, an int is the status, anything
    else is printed (the traceback field) and the status is 1."""
    code = exc.code
    if code is None:
        return Outcome("exit", exit_code=0)
    if isinstance(code, int):
        return Outcome("exit", exit_code=code)
    return Outcome("exit", traceback=f"{code}\n", exit_code=1)


class EvalThread(threading.Thread):
    """Runs a session's evals one after another. Abandoned after an interrupt that did
    not stop the code in time, or once demoted: it then finishes that code and exits."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        # SimpleQueue (C): the cheapest hand-off to a waiting thread.
        self.jobs: queue.SimpleQueue[EvalJob | None] = queue.SimpleQueue()
        self.abandoned = False

    def demote(self) -> None:
        """Lower this thread's CPU priority for the rest of its life (on its own thread).

        Code that floods output (a print loop) keeps a CPU busy, and on a small
        machine the service's loop then waited in the kernel's run queue for up to
        5 ms at every step: a dropped client or a Ctrl-C was noticed that late and a
        fresh session took twice as long (``benchmarks/recovery.py``). At a lower
        priority the flood still runs whenever a CPU is free, and the service's loop,
        the worker's own threads and other processes go first. An unprivileged
        process cannot raise a priority again, so the thread is abandoned: it ends
        after this eval, and the session's next eval gets a fresh thread."""
        if sys.platform != "linux" or self.abandoned:
            return
        self.abandoned = True  # first: an interrupt below leaves a thread that ends
        with contextlib.suppress(OSError):
            native_id = threading.get_native_id()
            current = os.getpriority(os.PRIO_PROCESS, native_id)
            os.setpriority(os.PRIO_PROCESS, native_id, max(current, FLOOD_NICENESS))

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            job.run()
            if self.abandoned:
                return


def demote_flooding_thread() -> None:
    """``SessionOutput``'s ``on_flood``: demote the eval thread that floods (see
    :meth:`EvalThread.demote`); any other thread is left as it is."""
    thread = threading.current_thread()
    if isinstance(thread, EvalThread):
        thread.demote()


class ThreadPool:
    """Idle eval threads kept for the next sessions (at most ``size``): starting one per
    session was a good part of a one-shot ``exec``'s cost. Used from service loops only.

    A session's thread is not given back when its code floods output or does not
    stop in time (it is abandoned), so after a fault the next session, the one a
    user opens to see what went wrong, found no idle thread and paid for starting
    one (a seventh of a fresh session after Ctrl-C on a print loop,
    ``benchmarks/recovery.py``). :meth:`retire` starts a spare instead, and
    sessions call :meth:`keep_one` a little after taking the last idle one."""

    def __init__(self, size: int):
        self.size = size
        self.lock = threading.Lock()
        self.threads: list[EvalThread] = []

    def get(self, name: str) -> EvalThread:
        with self.lock:
            while self.threads:
                thread = self.threads.pop()
                if thread.is_alive() and not thread.abandoned:
                    thread.name = name
                    return thread
        return self._start(name)

    def put(self, thread: EvalThread) -> None:
        """Keep ``thread`` for later, or let it end."""
        with self.lock:
            if len(self.threads) < self.size and thread.is_alive() and not thread.abandoned:
                thread.name = "dask-cli-shell-idle"
                self.threads.append(thread)
                return
        self._end(thread)

    def retire(self, thread: EvalThread, loop: asyncio.AbstractEventLoop) -> None:
        """``thread`` ends after its current code and is never reused; a spare takes
        its place after this turn of ``loop`` (the service's)."""
        self._end(thread)
        loop.call_soon(self.keep_one)

    @staticmethod
    def _end(thread: EvalThread) -> None:
        thread.abandoned = True
        thread.jobs.put(None)

    def keep_one(self) -> None:
        """Start an idle thread if none is left."""
        with self.lock:
            if any(thread.is_alive() and not thread.abandoned for thread in self.threads):
                return
        self.put(self._start("dask-cli-shell-idle"))

    @staticmethod
    def _start(name: str) -> EvalThread:
        thread = EvalThread(name=name)
        thread.start()
        return thread


idle_threads = ThreadPool(2)


class ShellSources:
    """The ``<shell-N>`` name of each source sessions run, with its lines in
    ``linecache`` (tracebacks, ``inspect.getsource`` and ``pm``'s ``list`` show them).

    One name per distinct source, shared by all sessions: a new name per eval left
    one ``linecache`` entry behind for every eval, forever (a worker sent one
    command a second grew by megabytes a day). At most ``limit`` names are kept; the
    one run least recently is dropped with its lines, after which its tracebacks
    show no source line."""

    def __init__(self, limit: int = MAX_SHELL_SOURCES) -> None:
        self.limit = limit
        self._names: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()  # eval threads of several sessions, never user code

    def name(self, source: str) -> str:
        with self._lock:
            name = self._names.get(source)
            if name is None:
                name = self._names[source] = f"<shell-{next(_shell_numbers)}>"
                if len(self._names) > self.limit:
                    _, dropped = self._names.popitem(last=False)
                    linecache.cache.pop(dropped, None)
            else:
                self._names.move_to_end(source)
            if name not in linecache.cache:  # new, or ``linecache.clearcache()`` ran
                linecache.cache[name] = _lines_entry(source, name)
        return name


def _lines_entry(source: str, filename: str) -> tuple[int, None, list[str], str]:
    """A ``linecache`` entry for source that is no file (no mtime: never checked)."""
    return (len(source), None, source.splitlines(True), filename)


shell_sources = ShellSources()


# Compiled short sources: compiling ``1+1`` cost a tenth of its round trip.
COMPILE_CACHE_SIZE = 256
COMPILE_CACHE_MAX_CHARS = 2048
_compiled: dict[tuple[str, str, str], tuple[types.CodeType, bool]] = {}
_compiled_lock = threading.Lock()  # eval threads of several sessions, never user code


def compile_source(source: str, mode: str, filename: str) -> tuple[types.CodeType, bool]:
    """Compile as the asyncio REPL does (top-level await allowed). ``auto`` tries an
    expression first (its value is shown), then statements."""
    key = (source, mode, filename)
    with _compiled_lock:
        hit = _compiled.get(key)
    if hit is not None:
        return hit
    compiled = _compile(source, mode, filename)
    if len(source) <= COMPILE_CACHE_MAX_CHARS:
        with _compiled_lock:
            if len(_compiled) >= COMPILE_CACHE_SIZE:
                del _compiled[next(iter(_compiled))]  # the oldest
            _compiled[key] = compiled
    return compiled


def _compile(source: str, mode: str, filename: str) -> tuple[types.CodeType, bool]:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    if mode == "auto":
        try:
            return compile(source, filename, "eval", flags=flags, dont_inherit=True), True
        except SyntaxError:
            pass
    return compile(source, filename, "exec", flags=flags, dont_inherit=True), False


def format_exception(exc: BaseException, filename: str) -> str:
    """The traceback from the user's code down, without the service's own frames."""
    tb = exc.__traceback__
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != filename:
        start = start.tb_next
    return "".join(traceback.format_exception(type(exc), exc, start or tb))
