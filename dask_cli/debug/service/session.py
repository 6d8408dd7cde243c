"""One shell session: a client's namespace and the evals it sends, on the service loop.

Plain code runs on the session's thread (:mod:`dask_cli.debug.service.evaluation`),
so ``time.sleep(60)`` does not freeze the worker and Ctrl-C can interrupt it; code
with top-level ``await`` runs on the server's own event loop (it may use the
worker's comms), as CPython's ``asyncio/__main__.py`` does. Output is routed to the
session through :mod:`dask_cli.debug.service.streams` and streamed back while the
code runs.

Everything here runs on the service's event loop (its own thread), except what the
eval's thread calls through :class:`RunningEval`'s ``wake`` and ``read_line``, which
only schedule work on that loop or wait on a lock the loop only releases: a
session never makes the loop wait for its thread.
"""

from __future__ import annotations

import _thread
import asyncio
import builtins
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from dask_cli.debug import protocol
from dask_cli.debug.service import features
from dask_cli.debug.service.audit import audit_trail
from dask_cli.debug.service.evaluation import (
    INTERRUPT_GRACE,
    INTERRUPT_REPEAT,
    INTERRUPT_REPEATS,
    EvalJob,
    EvalThread,
    Outcome,
    demote_flooding_thread,
    idle_threads,
    raised_outcome,
    value_outcome,
)
from dask_cli.debug.service.helpers import namespace_helpers, server_kind
from dask_cli.debug.service.loop import loop_gate
from dask_cli.debug.service.streams import (
    SessionOutput,
    current_output,
    install_routing,
)

logger = logging.getLogger("dask_cli.debug.service")

# Coalesce output for this long before sending it.
FLUSH_INTERVAL = 0.02
# One output message carries at most this much text.
OUTPUT_CHUNK = protocol.MAX_OUTPUT_CHARS
# A waiting input() looks this often whether its eval was given up.
INPUT_POLL = 0.1
# Retry an interrupt that met the eval's thread switching in or out of the code.
INTERRUPT_RETRY = 0.001
# A session that took the last idle thread has a spare started this much later.
SPARE_DELAY = 0.1

Send = Callable[[dict[str, Any]], Awaitable[None]]


def _exit(code: object = None) -> None:
    """End this shell session (never the worker)."""
    raise SystemExit(code)


class _InputSlot:
    """A line the eval's thread asked for: the loop answers, the thread waits on a lock
    that only the loop releases (an interrupt in the thread leaves nothing held)."""

    def __init__(self) -> None:
        self._answered = _thread.allocate_lock()
        self._answered.acquire()
        self.text: str | None = None
        self.interrupted = False

    def answer(self, text: str | None, interrupted: bool = False) -> None:
        self.text, self.interrupted = text, interrupted
        with contextlib.suppress(RuntimeError):  # answered twice
            self._answered.release()

    def wait(self, given_up: Callable[[], bool]) -> str | None:
        while not self._answered.acquire(timeout=INPUT_POLL):
            if given_up():
                return None
        if self.interrupted:
            raise KeyboardInterrupt
        return self.text


class RunningEval:
    """One ``eval`` request on the loop: its output and pump, its answer, its interrupt."""

    def __init__(self, session: ShellSession, request: protocol.Eval):
        self.session = session
        self.request = request
        self.loop = session.service_loop
        self.finished: asyncio.Future[Outcome] = self.loop.create_future()
        self.output = SessionOutput(
            self._wake_from_thread,
            self._read_line,
            on_flood=self._flooding,
            gate=loop_gate(self.loop),
        )
        self.job = EvalJob(
            request.source,
            request.mode,
            request.filename,
            session.namespace,
            self.output,
            self.loop,
            self._thread_done,
        )
        self.data_ready = asyncio.Event()
        self.urgent = False
        self.pump: asyncio.Task[None] | None = None  # started by the first output only
        self.input_slot: _InputSlot | None = None
        self.server_future: Any = None  # await code: its future on the server's loop
        self.interrupted = False
        self.dropped = 0  # output characters a Ctrl-C dropped
        self.returned = False  # the thread handed back its outcome

    # --- called on the eval's thread (schedule, never wait for the loop) -------

    def _wake_from_thread(self, urgent: bool) -> None:
        with contextlib.suppress(RuntimeError):  # service loop closed
            # A fresh context: the thread's routes output to this session, and a task
            # made in it (the pump) would send the service's own errors to the client.
            self.loop.call_soon_threadsafe(self._wake, urgent, context=contextvars.Context())

    def _read_line(self, prompt: str) -> str | None:
        slot = _InputSlot()
        try:
            self.loop.call_soon_threadsafe(
                self._ask_input, prompt, slot, context=contextvars.Context()
            )
        except RuntimeError:
            return None
        return slot.wait(lambda: self.output.closed)

    def _flooding(self) -> None:
        """The code floods output: its thread is demoted and retired after this eval
        (``EvalThread.demote``), so a spare is started now, for the next session."""
        demote_flooding_thread()
        with contextlib.suppress(RuntimeError):  # service loop closed
            self.loop.call_soon_threadsafe(idle_threads.keep_one, context=contextvars.Context())

    # --- on the loop -----------------------------------------------------------

    def _wake(self, urgent: bool) -> None:
        self.urgent = self.urgent or urgent
        self.data_ready.set()
        if self.pump is None and not self.finished.done():
            # Most evals print nothing: no pump task for them.
            self.pump = asyncio.ensure_future(self._pump())

    def _thread_done(self, outcome: Outcome) -> None:
        self.returned = True  # the thread is out of the code: no more interrupts
        if self.finished.done():
            if outcome.coroutine is not None:
                outcome.coroutine.close()
            return
        if outcome.coroutine is None:
            self.finished.set_result(outcome)
        elif self.interrupted:
            outcome.coroutine.close()
            self.finished.set_result(Outcome("interrupted"))
        else:
            asyncio.ensure_future(self._await_on_server(outcome))

    async def _await_on_server(self, outcome: Outcome) -> None:
        session = self.session
        output = self.output
        filename = self.job.compiled_filename

        async def routed() -> Outcome:
            current_output.set(output)
            try:
                value = await outcome.coroutine
                return value_outcome(value, outcome.expression, session.namespace)
            except (Exception, SystemExit, KeyboardInterrupt) as exc:  # not cancellation
                return raised_outcome(exc, filename)

        if self.interrupted:
            outcome.coroutine.close()
            if not self.finished.done():
                self.finished.set_result(Outcome("interrupted"))
            return
        try:
            self.server_future = asyncio.run_coroutine_threadsafe(
                routed(), server_loop(session.server)
            )
            result = await asyncio.wrap_future(self.server_future)
        except (asyncio.CancelledError, RuntimeError):  # interrupted; the loop is gone
            result = Outcome("interrupted")
        if not self.finished.done():
            self.finished.set_result(result)

    def interrupt(self) -> None:
        """Ctrl-C: cancel await code, raise KeyboardInterrupt in plain code, and give
        up on the code after ``INTERRUPT_GRACE`` seconds (timed from the first one)."""
        if self.finished.done():
            return
        first = not self.interrupted
        self.interrupted = True
        if first:
            self.dropped += self.output.discard()
        if self.input_slot is not None:
            self.input_slot.answer(None, interrupted=True)
            self.input_slot = None
        if self.server_future is not None:
            self.server_future.cancel()
        self._raise_in_thread(50)
        if first:
            self.loop.call_later(INTERRUPT_REPEAT, self._raise_again, INTERRUPT_REPEATS)
            self.loop.call_later(INTERRUPT_GRACE, self.session._abandon, self)

    def _raise_in_thread(self, tries: int, again: bool = False) -> None:
        if self.job.user_code.interrupt(again) is None and tries > 0:
            self.loop.call_later(INTERRUPT_RETRY, self._raise_in_thread, tries - 1, again)

    def _raise_again(self, left: int) -> None:
        """The code still runs: raise again, every ``INTERRUPT_REPEAT`` for a while, also
        once it was given up on. The eval's thread is where the garbage collector runs
        the service's finalizers and weakref callbacks (it allocates the most), and an
        interrupt that lands in one of them is only printed as "Exception ignored"."""
        if self.returned or self.server_future is not None or left <= 0:
            return
        if self.job.user_code.interrupt(again=True) is not False:  # False: the code is over
            self.loop.call_later(INTERRUPT_REPEAT, self._raise_again, left - 1)

    def _ask_input(self, prompt: str, slot: _InputSlot) -> None:
        if self.finished.done() or self.output.closed or self.interrupted:
            slot.answer(None, interrupted=self.interrupted)
            return
        self.input_slot = slot
        asyncio.ensure_future(self._send_input_request(prompt, slot))

    async def _send_input_request(self, prompt: str, slot: _InputSlot) -> None:
        try:
            await self.send_output()
            await self.session.send(
                protocol.InputRequest(id=self.request.id, prompt=prompt).to_msg()
            )
        except Exception:  # the client is gone: end of file
            slot.answer(None)

    def input_reply(self, text: str | None) -> None:
        slot, self.input_slot = self.input_slot, None
        if slot is not None:
            slot.answer(text)

    async def _pump(self) -> None:
        with contextlib.suppress(Exception):  # the client is gone: eval() sees it too
            await self._pump_until_finished()

    async def _pump_until_finished(self) -> None:
        while not self.finished.done():
            await self.data_ready.wait()
            self.data_ready.clear()
            if self.finished.done():
                return
            if not self.urgent:
                # Let small writes batch up for a moment, but stop waiting as soon as
                # the buffer passes FLUSH_BYTES (that wake sets data_ready again):
                # a plain sleep here stalled every refill of a fast writer.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.data_ready.wait(), FLUSH_INTERVAL)
                self.data_ready.clear()
            self.urgent = False
            await self.send_output()

    async def send_output(self) -> None:
        """Send what is buffered, one bounded ``take`` at a time (each send lets the
        loop read the client's next message), until nothing is left."""
        output = self.output
        while True:
            for stream, text in output.take():
                for start in range(0, len(text), OUTPUT_CHUNK):
                    await self.session.send(
                        protocol.Output(
                            id=self.request.id,
                            stream=stream,
                            text=text[start : start + OUTPUT_CHUNK],
                        ).to_msg()
                    )
            if not output.backlog:
                return
            await asyncio.sleep(0)  # a turn of the loop between two takes, whatever send did

    async def finish(self) -> None:
        """After the outcome: the last output, then no more."""
        try:
            if self.pump is not None:
                self.data_ready.set()
                await self.pump
            await self.send_output()
        finally:
            self.output.close()


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
        self._running: dict[int, RunningEval] = {}
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

    async def eval(self, request: protocol.Eval) -> None:
        """Run ``request`` and send its output, then exactly one ``result``."""
        running = RunningEval(self, request)
        self._running[request.id] = running
        self._audit(request.source)
        try:
            async with self._eval_lock:
                if running.interrupted or self.closed:
                    outcome = Outcome("interrupted")
                else:
                    self._eval_thread().jobs.put(running.job)
                    outcome = await running.finished
                    await running.finish()
            result = protocol.Result(
                id=request.id,
                status=outcome.status,
                value=str(outcome.exit_code) if outcome.status == "exit" else outcome.value,
                traceback=outcome.traceback,
                dropped=running.dropped,
            )
            await self.send(result.to_msg())
        except Exception:  # the client is gone; the session ends with the connection
            running.interrupt()
        finally:
            running.output.close()
            if running.pump is not None:
                running.pump.cancel()
            self._running.pop(request.id, None)

    def interrupt(self, eval_id: int) -> None:
        running = self._running.get(eval_id)
        if running is not None:
            running.interrupt()

    def input_reply(self, eval_id: int, text: str | None) -> None:
        running = self._running.get(eval_id)
        if running is not None:
            running.input_reply(text)

    async def close(self) -> None:
        """The client left: stop what runs, give the thread back (the server stays up).

        Never waits for the code: what does not stop is abandoned after the grace."""
        self.closed = True
        running = list(self._running.values())
        for each in running:
            each.interrupt()
            each.output.close()
        thread, self._thread = self._thread, None
        if thread is not None and not running:
            idle_threads.put(thread)
        elif thread is not None:
            idle_threads.retire(thread, self.service_loop)  # ends after the interrupted code

    def _eval_thread(self) -> EvalThread:
        if self._thread is None or self._thread.abandoned or not self._thread.is_alive():
            self._thread = idle_threads.get(f"dask-cli-shell-{self.id}")
            # Refill the pool, but not during this eval: starting a thread holds the loop.
            self.service_loop.call_later(SPARE_DELAY, idle_threads.keep_one)
        return self._thread

    def _abandon(self, running: RunningEval) -> None:
        """The interrupted code did not stop in time: answer anyway, drop its later
        output and run the next requests on a fresh thread."""
        if running.finished.done():
            return
        if running.server_future is None and self._thread is not None:
            idle_threads.retire(self._thread, self.service_loop)
            self._thread = None
        running.output.close()
        running.finished.set_result(Outcome("interrupted"))

    def _audit(self, source: str) -> None:
        """Every source sent to evaluate is a server event: the scheduler keeps the audit
        trail. Called on the service loop, before the code is queued."""
        event = {"session": self.id, "source": source, "client": self.client}
        audit_trail(self.server, self.service_loop).add(event)


def server_loop(server: Any) -> asyncio.AbstractEventLoop:
    """The event loop of the worker or scheduler the session runs in."""
    return server.loop.asyncio_loop
