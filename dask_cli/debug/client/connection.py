"""A client's connection to a shell service (the API the REPL and the runner use).

One reader task dispatches what the service sends by request ``id``, so several
requests (an eval, a completion, a stack dump) can be in flight on one connection.

Nothing here waits forever on a silent peer (a SIGSTOPped process, a paused
container): connecting is bounded by ``timeout`` as a whole, and while a request
waits for its result the connection pings the service (answered on the service's
own thread, even while code runs) and gives up after ``timeout`` seconds without
hearing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dask_cli.debug import protocol
from dask_cli.debug.client.connect import classify, close_comm, connect_comm, whoami
from dask_cli.debug.protocol import Completion, Result, WorkerRecord
from dask_cli.errors import ConnectionFailed, RemoteError

OnOutput = Callable[[str, str], None]
OnInput = Callable[[str], Awaitable["str | None"]]


@dataclass
class _Pending:
    future: asyncio.Future[Result]
    on_output: OnOutput | None = None
    on_input: OnInput | None = None
    is_eval: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class ShellConnection:
    """An open shell session on a worker or scheduler.

    ``target`` (``WorkerRecord``), ``banner`` and ``helpers`` (what the session's
    namespace offers) come from the service's ``welcome``.
    """

    def __init__(self, comm: Any, welcome: protocol.Welcome, address: str, timeout: float = 10):
        self.comm = comm
        self.address = address
        # Seconds of silence, while a result is awaited, after which the peer is dead.
        self.timeout = timeout
        self.session = welcome.session
        self.target = WorkerRecord.from_msg(welcome.target)
        self.banner = welcome.banner
        self.helpers = list(welcome.helpers)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._write_lock = asyncio.Lock()
        self._closed: BaseException | None = None
        loop = asyncio.get_running_loop()
        self._last_heard = loop.time()  # when the service last sent anything
        self._last_ping = loop.time()
        self._pings: set[asyncio.Task[None]] = set()
        self._reader = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def open(
        cls,
        shell_address: str,
        security: Any = None,
        timeout: float = 10,
        client: dict[str, Any] | None = None,
        _then: tuple[protocol.Request, _Pending] | None = None,
    ) -> ShellConnection:
        """Connect to ``shell_address``, say hello, and wait for the welcome.

        ``timeout`` bounds the connection and the welcome, and is the silence after
        which a later request fails (see ``_wait_alive``). ``_then``: a request sent
        right behind the hello (see ``open_and_eval``)."""
        comm = await connect_comm(shell_address, security, timeout, what="process")
        if hasattr(comm, "allow_offload"):
            # Small messages: skip distributed's per-message ``sizeof`` (see the
            # service's ``_no_offload``).
            comm.allow_offload = False
        hello = protocol.Hello(
            version=protocol.PROTOCOL_VERSION,
            client=client if client is not None else whoami(),
        )
        try:
            await comm.write(hello.to_msg())
            if _then is not None:
                await comm.write(_then[0].to_msg())
            reply = await asyncio.wait_for(comm.read(), timeout)
            welcome = protocol.parse_service_message(reply)
        except protocol.ProtocolError:
            await close_comm(comm)
            raise ConnectionFailed(
                f"{shell_address} is not a dask-cli shell service",
                hint="Give a worker's name, address or shell address (see `dask worker list`).",
            ) from None
        except Exception as exc:
            with contextlib.suppress(Exception):
                await comm.close()
            raise classify(shell_address, exc, timeout, "process", "handshake") from None
        if isinstance(welcome, protocol.Error):
            await comm.close()
            raise ConnectionFailed(f"{shell_address} refused the session: {welcome.message}")
        if not isinstance(welcome, protocol.Welcome):
            await comm.close()
            raise ConnectionFailed(f"{shell_address} is not a dask-cli shell service")
        conn = cls(comm, welcome, shell_address, timeout)
        if _then is not None:
            # Registered before the reader task first runs: it sees every answer.
            request, pending = _then
            conn._pending[request.id] = pending
        return conn

    @classmethod
    async def open_and_eval(
        cls,
        shell_address: str,
        source: str,
        security: Any = None,
        timeout: float = 10,
        mode: str = "auto",
        on_output: OnOutput | None = None,
        filename: str = "<shell>",
    ) -> tuple[ShellConnection, Result]:
        """``open`` then ``eval(source)``, one round trip shorter: the eval goes right
        behind the hello instead of after the welcome.

        Safe because the service reads a connection's messages in order and starts
        a session only after a valid hello: a refused hello never runs the code.
        The caller closes the returned connection."""
        request = protocol.Eval(id=1, source=source, mode=mode, filename=filename)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, on_output, None, is_eval=True)
        conn = await cls.open(shell_address, security, timeout, _then=(request, pending))
        next(conn._ids)  # id 1 is taken by the eval
        try:
            result = await conn._wait_alive(future)
        except BaseException:
            await conn.close()
            raise
        finally:
            conn._pending.pop(request.id, None)
        return conn, result

    # --- requests -------------------------------------------------------------

    async def eval(
        self,
        source: str,
        mode: str = "auto",
        on_output: OnOutput | None = None,
        on_input: OnInput | None = None,
        filename: str = "<shell>",
    ) -> Result:
        """Run ``source`` remotely; ``on_output(stream, text)`` gets output as it comes,
        ``on_input(prompt)`` answers ``input()`` (None: end of file). Cancelling this
        coroutine interrupts the remote code."""
        request = protocol.Eval(id=next(self._ids), source=source, mode=mode, filename=filename)
        pending = _Pending(self._new_future(), on_output, on_input, is_eval=True)
        try:
            return await self._send_request(request, pending)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.interrupt(request.id)
            raise

    async def interrupt(self, id: int | None = None) -> None:
        """Ctrl-C for eval ``id`` (by default every eval running on this connection)."""
        ids = [id] if id is not None else [i for i, p in self._pending.items() if p.is_eval]
        for eval_id in ids:
            await self._write(protocol.Interrupt(id=eval_id).to_msg())

    async def complete(self, source: str, cursor: int) -> list[Completion]:
        result = await self.request(protocol.Complete(id=0, source=source, cursor=cursor))
        if result.status != "ok":
            return []
        return [Completion(**item) for item in result.data or []]

    async def stacks(self) -> str:
        return str(self._data(await self.request(protocol.Stacks(id=0))))

    async def logs(self, n: int = 100) -> list[str]:
        return list(self._data(await self.request(protocol.Logs(id=0, n=n))))

    async def request(self, msg: protocol.Request) -> Result:
        """Send any request (its ``id`` is assigned here) and wait for its result."""
        msg.id = next(self._ids)
        return await self._send_request(msg, _Pending(self._new_future()))

    @staticmethod
    def _data(result: Result) -> Any:
        if result.status != "ok":
            text = (result.traceback or f"request failed ({result.status})").strip()
            raise RemoteError(
                result.error or text.splitlines()[-1], hint=result.hint, traceback=result.traceback
            )
        return result.data

    async def close(self) -> None:
        """Say bye and close; the remote session ends, the worker stays up."""
        if self._closed is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._write(protocol.Bye().to_msg()), 2)
        self._closed = self._closed or ConnectionFailed("connection closed")
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
        await close_comm(self.comm)
        self._fail_all(self._closed)

    async def __aenter__(self) -> ShellConnection:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    # --- internals ------------------------------------------------------------

    def _new_future(self) -> asyncio.Future[Result]:
        return asyncio.get_running_loop().create_future()

    async def _send_request(self, msg: protocol.Request, pending: _Pending) -> Result:
        if self._closed is not None:
            raise ConnectionFailed(f"Connection to {self.address} is closed")
        self._pending[msg.id] = pending
        try:
            await self._write(msg.to_msg())
            return await self._wait_alive(pending.future)
        finally:
            self._pending.pop(msg.id, None)

    async def _wait_alive(self, future: asyncio.Future[Result]) -> Result:
        """``future``'s result, as long as the service shows signs of life.

        Code may legitimately run for hours, so silence alone is not death: after
        ``timeout / 2`` seconds without a message we send a ``ping``, which the
        service answers at once from its own thread even while the code runs. Only
        ``timeout`` seconds of complete silence (a frozen or unreachable process)
        fail the wait, and the connection with it.

        The task awaits ``future`` itself and a timer does the watching: a waiter
        woken by either (the earlier way) cost every short request a loop iteration."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        timer: list[asyncio.TimerHandle] = []

        def watch() -> None:
            if future.done():
                return
            now = loop.time()
            heard = max(self._last_heard, started)
            if now - heard >= self.timeout:
                error = ConnectionFailed(
                    f"{self.target.kind.capitalize()} {self.target.name!r} ({self.address}) "
                    f"stopped answering: timed out after {self.timeout:g} s of silence "
                    "(is it frozen or unreachable?)",
                    hint="Raise the wait with --timeout if it is only slow.",
                )
                self._closed = self._closed or error
                self._fail_all(error)
                return
            half = self.timeout / 2
            if now - max(heard, self._last_ping) >= half:
                self._last_ping = now
                self._spawn_ping()
            wake = min(heard + self.timeout, max(heard, self._last_ping) + half)
            timer[:] = [loop.call_later(max(wake - now, 0.01), watch)]

        watch()
        try:
            return await future
        finally:
            for handle in timer:
                handle.cancel()

    def _spawn_ping(self) -> None:
        """Send a ``ping`` without waiting for it: its answer, like any message,
        only refreshes ``_last_heard`` (an unknown ``id`` is dropped by ``_dispatch``).
        A write stuck on a frozen peer must not stall the waiting request."""

        async def ping() -> None:
            with contextlib.suppress(ConnectionFailed):
                await self._write(protocol.Ping(id=next(self._ids)).to_msg())

        task = asyncio.ensure_future(ping())
        self._pings.add(task)
        task.add_done_callback(self._pings.discard)

    async def _write(self, msg: dict[str, Any]) -> None:
        try:
            async with self._write_lock:
                await self.comm.write(msg)
        except Exception as exc:
            raise ConnectionFailed(f"Lost the connection to {self.address}: {exc}") from None

    async def _read_loop(self) -> None:
        try:
            while True:
                raw = await self.comm.read()
                self._last_heard = asyncio.get_running_loop().time()
                msg = protocol.parse_service_message(raw)
                self._dispatch(msg)
                if isinstance(msg, protocol.Output):
                    # A read of data already buffered completes without yielding to
                    # the loop: while output keeps coming, nothing else (ptpython's
                    # Ctrl-C handler, the interrupt it sends) would ever run.
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._closed = ConnectionFailed(
                f"Lost the connection to {self.target.kind} {self.target.name!r} "
                f"({self.address}): {type(exc).__name__}"
            )
            self._fail_all(self._closed)

    def _dispatch(self, msg: protocol.Message) -> None:
        if isinstance(msg, protocol.Result):
            pending = self._pending.get(msg.id)
            if pending is not None and not pending.future.done():
                pending.future.set_result(msg)
        elif isinstance(msg, protocol.Output):
            pending = self._pending.get(msg.id)
            if pending is not None and pending.on_output is not None:
                pending.on_output(msg.stream, msg.text)
        elif isinstance(msg, protocol.InputRequest):
            pending = self._pending.get(msg.id)
            task = asyncio.ensure_future(self._answer_input(msg, pending))
            if pending is not None:
                pending.tasks.add(task)
                task.add_done_callback(pending.tasks.discard)
        elif isinstance(msg, protocol.Error):
            pending = self._pending.get(msg.id) if msg.id is not None else None
            if pending is not None and not pending.future.done():
                pending.future.set_result(Result(id=msg.id or 0, status="error", error=msg.message))

    async def _answer_input(self, msg: protocol.InputRequest, pending: _Pending | None) -> None:
        text = None
        if pending is not None and pending.on_input is not None:
            text = await pending.on_input(msg.prompt)
        with contextlib.suppress(ConnectionFailed):
            await self._write(protocol.InputReply(id=msg.id, text=text).to_msg())

    def _fail_all(self, exc: BaseException) -> None:
        for pending in list(self._pending.values()):
            if not pending.future.done():
                pending.future.set_exception(exc)
