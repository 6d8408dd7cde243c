"""One shell session: a namespace, and the evaluation of code sent by one client.

Plain code runs on a thread of the session, so ``time.sleep(60)`` does not freeze
the worker and Ctrl-C can interrupt it; code with top-level ``await`` runs on the
server's own event loop (it may use the worker's comms), as CPython's
``asyncio/__main__.py`` does. Output is routed to the session through
:mod:`dask_cli.debug.service.streams` and streamed back while the code runs.

The methods named ``async`` run on the service's event loop (its own thread);
``_execute`` runs on the session's thread.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import concurrent.futures
import contextlib
import ctypes
import inspect
import itertools
import linecache
import logging
import queue
import threading
import traceback
import types
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from dask_cli.debug import protocol
from dask_cli.debug.service import features
from dask_cli.debug.service.helpers import namespace_helpers, server_kind
from dask_cli.debug.service.streams import (
    SessionOutput,
    current_output,
    install_routing,
)

logger = logging.getLogger("dask_cli.debug.service")

# After an interrupt, answer "interrupted" this soon even if the code has not stopped
# (a C call such as time.sleep cannot be broken from another thread).
INTERRUPT_GRACE = 0.5
# Coalesce output for this long before sending it.
FLUSH_INTERVAL = 0.02
# Audit events are handed to the server's loop in batches, at most this late: one
# callback onto the worker's loop per eval cost the round trip a fifth of its time.
AUDIT_DELAY = 0.05

_filenames = itertools.count(1)

Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Outcome:
    __slots__ = ("status", "value", "traceback")

    def __init__(self, status: str, value: str | None = None, tb: str | None = None):
        self.status = status
        self.value = value
        self.traceback = tb


def _exit(code: object = None) -> None:
    """End this shell session (never the worker)."""
    raise SystemExit(code)


class EvalThread(threading.Thread):
    """Runs a session's evals one after another. Abandoned after an interrupt that
    did not stop the code in time: it then finishes its job and exits."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        # SimpleQueue (C): the cheapest hand-off to a waiting thread.
        self.jobs: queue.SimpleQueue[EvalJob | None] = queue.SimpleQueue()
        self.abandoned = False

    def run(self) -> None:
        while True:
            try:
                job = self.jobs.get()
                if job is None:
                    return
                job.run()
                if self.abandoned:
                    return
            except BaseException:  # a stray KeyboardInterrupt from a late interrupt
                if self.abandoned:
                    return


class _ThreadPool:
    """Idle eval threads kept for the next sessions (at most ``size``)."""

    def __init__(self, size: int):
        self.size = size
        self.lock = threading.Lock()
        self.threads: list[EvalThread] = []

    def get(self) -> EvalThread | None:
        with self.lock:
            while self.threads:
                thread = self.threads.pop()
                if thread.is_alive() and not thread.abandoned:
                    return thread
        return None

    def put(self, thread: EvalThread) -> bool:
        with self.lock:
            if len(self.threads) >= self.size or not thread.is_alive():
                return False
            thread.name = "dask-cli-shell-idle"
            self.threads.append(thread)
            return True


_idle_threads = _ThreadPool(2)


class EvalJob:
    """One ``eval`` request: its output buffer, its thread or future, its answer."""

    def __init__(self, session: ShellSession, request: protocol.Eval):
        self.session = session
        self.request = request
        self.loop = session.service_loop
        self.done: asyncio.Future[_Outcome] = self.loop.create_future()
        self.data_ready = asyncio.Event()
        self.pump: asyncio.Task[None] | None = None  # started by the first output only
        self.urgent = False
        self.finished = False
        self.output = SessionOutput(self._on_data, self._read_line)
        self.lock = threading.Lock()
        self.thread_ident: int | None = None
        self.in_user_code = False
        self.future: concurrent.futures.Future[Any] | None = None
        self.input_future: asyncio.Future[str | None] | None = None
        self.interrupted = False

    # --- called from the eval's thread ---------------------------------------

    def _on_data(self, urgent: bool) -> None:
        def wake() -> None:
            self.urgent = self.urgent or urgent
            self.data_ready.set()
            if self.pump is None and not self.finished:
                # Most evals print nothing: no pump task for them.
                self.pump = asyncio.ensure_future(self.session._pump(self))

        with contextlib.suppress(RuntimeError):  # service loop closed
            self.loop.call_soon_threadsafe(wake)

    def _read_line(self, prompt: str) -> str | None:
        future = asyncio.run_coroutine_threadsafe(self.session._ask_input(self, prompt), self.loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise KeyboardInterrupt from None

    def run(self) -> None:
        with self.lock:
            if self.interrupted:  # interrupted while queued: never runs
                return
            self.thread_ident = threading.get_ident()
        token = current_output.set(self.output)
        try:
            outcome = self.session._execute(self)
        except BaseException:  # interrupted outside user code
            outcome = _Outcome("interrupted")
        finally:
            with self.lock:
                self.thread_ident = None
                self.in_user_code = False
            current_output.reset(token)
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.resolve, outcome)

    # --- called on the service loop ------------------------------------------

    def resolve(self, outcome: _Outcome) -> None:
        if not self.done.done():
            self.done.set_result(outcome)

    def interrupt(self) -> None:
        """Ctrl-C: cancel await-code, raise KeyboardInterrupt in plain code, and give
        up on the code after ``INTERRUPT_GRACE`` seconds."""
        if self.done.done():
            return
        self.interrupted = True
        if self.input_future is not None and not self.input_future.done():
            self.input_future.cancel()
        if self.future is not None:
            self.future.cancel()
        with self.lock:
            started = self.thread_ident is not None
            if started and self.in_user_code and self.future is None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self.thread_ident), ctypes.py_object(KeyboardInterrupt)
                )
        if not started and self.future is None:
            # Still queued (``run`` checks ``interrupted`` under the lock): it never runs.
            self.resolve(_Outcome("interrupted"))
            return
        self.loop.call_later(INTERRUPT_GRACE, self.session._abandon, self)


class ShellSession:
    """A client's session: its namespace and its evals, on the server ``server``."""

    def __init__(
        self,
        server: Any,
        session_id: str,
        client: dict[str, Any],
        service_loop: asyncio.AbstractEventLoop,
        send: Send,
    ):
        install_routing()
        self.server = server
        self.id = session_id
        self.client = client
        self.service_loop = service_loop
        self.send = send
        self.kind = server_kind(server)
        self.namespace = self._make_namespace()
        self._thread: EvalThread | None = None
        self._jobs: dict[int, EvalJob] = {}
        self._eval_lock = asyncio.Lock()
        self.closed = False

    def _make_namespace(self) -> dict[str, Any]:
        import dask
        import distributed

        namespace: dict[str, Any] = {
            "__name__": "__main__",
            "__builtins__": builtins,
            self.kind: self.server,
            "dask": dask,
            "distributed": distributed,
            "exit": _exit,
            "quit": _exit,
        }
        namespace.update(namespace_helpers(self.server))
        for name, value in features.session_helpers(self.server, self).items():
            namespace.setdefault(name, value)  # a feature never hides a core name
        return namespace

    # --- the service loop side -----------------------------------------------

    async def eval(self, request: protocol.Eval) -> None:
        """Run ``request`` and send its output, then exactly one ``result``."""
        job = EvalJob(self, request)
        self._jobs[request.id] = job
        self._audit(request.source)
        try:
            async with self._eval_lock:
                if job.interrupted:
                    outcome = _Outcome("interrupted")
                else:
                    self._eval_thread().jobs.put(job)
                    outcome = await job.done
                    job.finished = True
                    if job.pump is not None:
                        job.data_ready.set()
                        await job.pump
                    await self._send_output(job)
                    job.output.close()
            await self.send(
                protocol.Result(
                    id=request.id,
                    status=outcome.status,
                    value=outcome.value,
                    traceback=outcome.traceback,
                ).to_msg()
            )
        finally:
            self._jobs.pop(request.id, None)

    def interrupt(self, eval_id: int) -> None:
        job = self._jobs.get(eval_id)
        if job is not None:
            job.interrupt()

    def input_reply(self, eval_id: int, text: str | None) -> None:
        job = self._jobs.get(eval_id)
        if job is not None and job.input_future is not None and not job.input_future.done():
            job.input_future.set_result(text)

    async def close(self) -> None:
        """The client left: stop what runs, drop the thread (the server stays up).

        An idle thread goes back to the pool for the next session: starting one
        per session was a good part of a one-shot ``exec``'s cost."""
        self.closed = True
        running = list(self._jobs.values())
        for job in running:
            job.interrupt()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if running or thread.abandoned or not _idle_threads.put(thread):
            thread.abandoned = True
            thread.jobs.put(None)

    def _eval_thread(self) -> EvalThread:
        if self._thread is None or self._thread.abandoned:
            name = f"dask-cli-shell-{self.id}"
            thread = _idle_threads.get()
            if thread is None:
                thread = EvalThread(name=name)
                thread.start()
            else:
                thread.name = name
            self._thread = thread
        return self._thread

    def _abandon(self, job: EvalJob) -> None:
        """The interrupted code did not stop in time: answer anyway, drop its later
        output and run the next requests on a fresh thread."""
        if job.done.done():
            return
        if job.future is None and self._thread is not None:
            self._thread.abandoned = True
            self._thread.jobs.put(None)
            self._thread = None
        job.output.close()
        job.resolve(_Outcome("interrupted"))

    async def _pump(self, job: EvalJob) -> None:
        while not job.finished:
            await job.data_ready.wait()
            job.data_ready.clear()
            if job.finished:
                return
            if not job.urgent:
                # Let small writes batch up for a moment, but stop waiting as soon as
                # the buffer passes FLUSH_BYTES (that wake sets data_ready again):
                # a plain sleep here stalled every refill of a fast writer.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(job.data_ready.wait(), FLUSH_INTERVAL)
                job.data_ready.clear()
            job.urgent = False
            await self._send_output(job)

    async def _send_output(self, job: EvalJob) -> None:
        for stream, text in job.output.take():
            for start in range(0, len(text), protocol.MAX_OUTPUT_CHARS):
                await self.send(
                    protocol.Output(
                        id=job.request.id,
                        stream=stream,
                        text=text[start : start + protocol.MAX_OUTPUT_CHARS],
                    ).to_msg()
                )

    async def _ask_input(self, job: EvalJob, prompt: str) -> str | None:
        await self._send_output(job)
        job.input_future = self.service_loop.create_future()
        await self.send(protocol.InputRequest(id=job.request.id, prompt=prompt).to_msg())
        return await job.input_future

    # --- the session thread side ---------------------------------------------

    def _execute(self, job: EvalJob) -> _Outcome:
        request = job.request
        filename = request.filename
        if filename == "<shell>":
            filename = f"<shell-{next(_filenames)}>"
        install_routing()  # again: something (a test runner, a task) may have replaced it
        try:
            code, is_expression = compile_source(request.source, request.mode, filename)
        except (SyntaxError, ValueError, OverflowError) as exc:
            return _Outcome("error", tb="".join(traceback.format_exception_only(exc)))
        linecache.cache[filename] = (
            len(request.source),
            None,
            request.source.splitlines(True),
            filename,
        )
        try:
            with job.lock:
                job.in_user_code = True
            try:
                value = types.FunctionType(code, self.namespace)()
            finally:
                with job.lock:
                    job.in_user_code = False
            if inspect.iscoroutine(value):
                value = self._run_on_server_loop(job, value)
        except SystemExit:
            return _Outcome("exit")
        except (KeyboardInterrupt, concurrent.futures.CancelledError, asyncio.CancelledError):
            return _Outcome("interrupted")
        except BaseException as exc:
            return _Outcome("error", tb=format_exception(exc, filename))
        if not is_expression or value is None:
            return _Outcome("ok")
        self.namespace["_"] = value
        try:
            return _Outcome("ok", value=repr(value))
        except BaseException as exc:
            return _Outcome("error", tb=format_exception(exc, filename))

    def _run_on_server_loop(self, job: EvalJob, coro: Any) -> Any:
        output = job.output

        async def routed() -> Any:
            current_output.set(output)
            return await coro

        job.future = asyncio.run_coroutine_threadsafe(routed(), server_loop(self.server))
        return job.future.result()

    def _audit(self, source: str) -> None:
        """Every source sent to evaluate is a server event: the scheduler keeps the audit
        trail. Called on the service loop, before the code is queued."""
        event = {"session": self.id, "source": source, "client": self.client}
        audit_trail(self.server, self.service_loop).add(event)


class AuditTrail:
    """A server's audit events, delivered to ``server.log_event`` in batches.

    Lives on the service loop: ``add`` queues an event and, for the first of a batch,
    schedules ``flush`` ``AUDIT_DELAY`` seconds later, which hands the whole batch
    to the server's loop in one callback (in order: nothing is dropped)."""

    def __init__(self, server: Any, loop: asyncio.AbstractEventLoop):
        self.server = server
        self.loop = loop
        self.pending: list[dict[str, Any]] = []

    def add(self, event: dict[str, Any]) -> None:
        if not self.pending:
            self.loop.call_later(AUDIT_DELAY, self.flush)
        self.pending.append(event)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        server = self.server

        def deliver() -> None:
            for event in batch:
                server.log_event("dask-cli-shell", event)

        try:
            server.loop.add_callback(deliver)
        except Exception:
            logger.debug("dask-cli shell: could not log the audit events", exc_info=True)


_audit_trails: weakref.WeakKeyDictionary[Any, AuditTrail] = weakref.WeakKeyDictionary()


def audit_trail(server: Any, loop: asyncio.AbstractEventLoop) -> AuditTrail:
    """The one batcher of ``server`` (per service loop)."""
    trail = _audit_trails.get(server)
    if trail is None or trail.loop is not loop:
        if trail is not None:
            trail.flush()
        trail = _audit_trails[server] = AuditTrail(server, loop)
    return trail


def server_loop(server: Any) -> asyncio.AbstractEventLoop:
    return server.loop.asyncio_loop


def compile_source(source: str, mode: str, filename: str) -> tuple[types.CodeType, bool]:
    """Compile as the asyncio REPL does (top-level await allowed). ``auto`` tries an
    expression first (its value is shown), then statements."""
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
