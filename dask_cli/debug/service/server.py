"""The shell service: a ``distributed.comm`` listener on its own thread and event loop.

Its own loop is what lets it answer (stacks, logs, a session running plain code)
while the worker's or scheduler's event loop is blocked by a task or a deadlock.
It speaks the messages of :mod:`dask_cli.debug.protocol` over TCP or TLS with the
server's ``Security``: with TLS, distributed's listener requires a client
certificate signed by the cluster's CA, so the shell never widens who can run code.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import os
import secrets
import socket
import threading
from typing import Any

import dask.config
from distributed.comm import CommClosedError

from dask_cli.debug import protocol
from dask_cli.debug.service import features
from dask_cli.debug.service.helpers import log_lines, server_kind, stacks_text
from dask_cli.debug.service.loop import ServiceLoop, loop_gate
from dask_cli.debug.service.session import ShellSession, audit_trail
from dask_cli.errors import DaskCliError

logger = logging.getLogger("dask_cli.debug.service")

HELLO_TIMEOUT = 10
# A client that reads none of its output for this long loses its session.
CLIENT_STALL_TIMEOUT = 30
# Closing a connection waits this long for its last writes to leave.
CLOSE_TIMEOUT = 2


def shell_enabled(server: Any) -> bool:
    """Off with ``cli.shell.enabled: false`` (``--no-shell``) or when the server's
    blocked handlers name ``BLOCKED_HANDLER_NAME``."""
    from dask_cli import config

    if not config.get("shell.enabled", True):
        return False
    kind = "scheduler" if server_kind(server) == "scheduler" else "worker"
    blocked = set(dask.config.get(f"distributed.{kind}.blocked-handlers", None) or ())
    blocked |= set(getattr(server, "blocked_handlers", None) or ())
    return protocol.BLOCKED_HANDLER_NAME not in blocked


def parse_ports(spec: Any) -> list[int]:
    """``cli.shell.port``: 0/None (random), an int, ``"9000"`` or a range ``"9000:9010"``."""
    if spec is None or spec == "":
        return [0]
    if isinstance(spec, int):
        return [spec]
    text = str(spec).strip()
    if ":" in text:
        first, last = text.split(":", 1)
        try:
            low, high = int(first), int(last)
        except ValueError:
            raise ValueError(f"bad shell port range {text!r}, expected FIRST:LAST") from None
        if high < low:
            raise ValueError(f"bad shell port range {text!r}: {high} < {low}")
        return list(range(low, high + 1))
    try:
        return [int(text)]
    except ValueError:
        raise ValueError(f"bad shell port {text!r}") from None


class ShellService:
    """Serves shell sessions for ``server`` (a Worker or a Scheduler)."""

    def __init__(self, server: Any, role: str):
        self.server = server
        self.role = role  # "worker" or "scheduler": which TLS settings to use
        self.kind = server_kind(server)
        self.address: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: Any = None
        self._sessions: set[ShellSession] = set()

    # --- lifecycle (called from any thread) ----------------------------------

    def start(self, timeout: float = 30) -> str:
        """Start the thread and listen; return the shell's contact address."""
        started: dict[str, Any] = {}
        ready = threading.Event()

        def run() -> None:
            loop = ServiceLoop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                started["address"] = loop.run_until_complete(self._listen())
            except BaseException as exc:
                started["error"] = exc
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="dask-cli-shell-service", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the dask-cli shell service did not start")
        if "error" in started:
            raise started["error"]
        self.address = started["address"]
        return self.address

    def stop(self, timeout: float = 5) -> None:
        """Stop from a thread that runs no event loop (waits up to ``timeout``)."""
        future = self._shutdown()
        if future is not None:
            with contextlib.suppress(Exception):
                future.result(timeout)

    async def close(self, timeout: float = 5) -> None:
        """Stop from an event loop (the worker's or scheduler's teardown): waits up to
        ``timeout`` without blocking that loop; a service that does not finish is left
        to its daemon thread, and logged."""
        future = self._shutdown()
        if future is None:
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except Exception:
            logger.warning("dask-cli shell: the service did not stop within %s s", timeout)

    def _shutdown(self) -> Any:
        loop = self._loop
        if loop is None or loop.is_closed():
            return None

        async def shutdown() -> None:
            if self._listener is not None:
                self._listener.stop()
            for session in list(self._sessions):
                await session.close()  # never waits for the code
            audit_trail(self.server, loop).flush()  # do not lose the last events
            loop.call_soon(loop.stop)

        try:
            return asyncio.run_coroutine_threadsafe(shutdown(), loop)
        except RuntimeError:  # the loop is already closed
            return None

    # --- on the service loop --------------------------------------------------

    async def _listen(self) -> str:
        from distributed.comm import listen
        from distributed.comm.addressing import parse_address, unparse_host_port

        from dask_cli import config

        own_listener = self.server.listener
        scheme, loc = parse_address(own_listener.listen_address)
        host = loc.rsplit(":", 1)[0] if ":" in loc else loc
        if host.startswith("["):
            host = host[1:-1]
        if scheme not in ("tcp", "tls", "ws", "wss"):
            # inproc:// (an in-process cluster) cannot be reached from a terminal.
            scheme, host = "tcp", "127.0.0.1"
        listen_args = self.server.security.get_listen_args(self.role)
        last_error: Exception | None = None
        for port in parse_ports(config.get("shell.port", 0)):
            address = f"{scheme}://{unparse_host_port(host, port)}"
            listener = listen(address, self._handle_comm, deserialize=False, **listen_args)
            try:
                await listener.start()
            except OSError as exc:
                last_error = exc
                continue
            self._listener = listener
            return listener.contact_address
        raise OSError(f"no free shell port in {config.get('shell.port')!r}: {last_error}")

    async def run_eval(self, request: protocol.Eval, client: dict[str, Any], send: Any) -> None:
        """Run one ``eval`` in a session of its own, awaited from any event loop (the
        worker's, for ``dask worker exec`` through the scheduler: ``fanout.py``).

        The session is the one a connection gets (namespace, eval thread, output
        capture, audit trail); ``send(msg)`` receives its ``output`` and ``result``
        messages on the service's loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise RuntimeError("the shell service is not running")

        async def on_service_loop() -> None:
            session = ShellSession(
                self.server, secrets.token_hex(4), _plain(client), asyncio.get_running_loop(), send
            )
            self._sessions.add(session)
            try:
                await session.eval(request)
            finally:
                self._sessions.discard(session)
                await session.close()

        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_service_loop(), loop))

    async def _handle_comm(self, comm: Any) -> None:
        """One client connection: ``hello``, then requests until ``bye`` or close."""
        session: ShellSession | None = None
        tasks: set[asyncio.Task[Any]] = set()
        write_lock = asyncio.Lock()

        async def send(msg: dict[str, Any]) -> None:
            async with write_lock:
                await comm.write(msg)
            if msg.get("op") == "output" and not await _flushed(comm, CLIENT_STALL_TIMEOUT):
                # A client that stopped reading (SIGSTOP, a paused terminal) costs
                # this much time, then its session: never the service.
                logger.warning(
                    "dask-cli shell: client read nothing for %s s; closing its session",
                    CLIENT_STALL_TIMEOUT,
                )
                comm.abort()
                raise CommClosedError("the client stopped reading")

        _no_offload(comm)
        gate = loop_gate(asyncio.get_running_loop())
        fd = _socket_fd(comm)
        if gate is not None and fd is not None:
            gate.watch(fd)
        try:
            try:
                first = await asyncio.wait_for(comm.read(), HELLO_TIMEOUT)
                hello = protocol.parse_client_message(first)
                if not isinstance(hello, protocol.Hello):
                    raise protocol.ProtocolError("the first message must be 'hello'")
                if hello.version != protocol.PROTOCOL_VERSION:
                    raise protocol.ProtocolError(
                        f"protocol version {hello.version} not supported "
                        f"(this service speaks {protocol.PROTOCOL_VERSION})"
                    )
            except (protocol.ProtocolError, asyncio.TimeoutError) as exc:
                with contextlib.suppress(Exception):
                    await send(protocol.Error(message=str(exc) or "no hello").to_msg())
                return
            session_id = secrets.token_hex(4)
            session = ShellSession(
                self.server, session_id, _plain(hello.client), asyncio.get_running_loop(), send
            )
            self._sessions.add(session)
            info = self.target_info()
            helpers = helper_names(session.namespace)
            await send(
                protocol.Welcome(
                    version=protocol.PROTOCOL_VERSION,
                    session=session_id,
                    target=info.to_msg(),
                    banner=banner(info, helpers),
                    helpers=helpers,
                ).to_msg()
            )
            while True:
                raw = await comm.read()
                if not isinstance(raw, dict):
                    await send(protocol.Error(message="expected a dict message").to_msg())
                    return
                try:
                    msg = protocol.parse_client_message(raw)
                except protocol.ProtocolError as exc:
                    raw_id = raw.get("id")
                    await send(
                        protocol.Error(
                            message=str(exc),
                            id=raw_id if type(raw_id) is int else None,
                        ).to_msg()
                    )
                    continue
                if isinstance(msg, protocol.Bye):
                    return
                if isinstance(msg, protocol.Interrupt):
                    session.interrupt(msg.id)
                elif isinstance(msg, protocol.InputReply):
                    session.input_reply(msg.id, msg.text)
                elif isinstance(msg, protocol.Eval):
                    _spawn(tasks, session.eval(msg))
                elif isinstance(msg, protocol.Request):
                    # Its own task on this loop: a ping (liveness) or a stack dump is
                    # answered while an eval runs, never queued behind it.
                    _spawn(tasks, self._answer(session, msg, send))
        except Exception as exc:
            if not isinstance(exc, CommClosedError):
                logger.warning("dask-cli shell: connection ended: %r", exc)
        finally:
            if session is not None:
                self._sessions.discard(session)
                await session.close()
            for task in tasks:
                task.cancel()
            if gate is not None and fd is not None:
                gate.unwatch(fd)
            try:
                # distributed's close flushes first: a peer that reads nothing holds it.
                await asyncio.wait_for(comm.close(), CLOSE_TIMEOUT)
            except Exception:
                comm.abort()

    async def _answer(self, session: ShellSession, msg: protocol.Request, send: Any) -> None:
        """Non-eval requests: one ``result`` each, ``error`` status if they fail."""
        try:
            data = await self._request_data(session, msg)
            result = protocol.Result(id=msg.id, data=data)
        except DaskCliError as exc:
            result = protocol.Result(id=msg.id, status="error", error=exc.message, hint=exc.hint)
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            result = protocol.Result(id=msg.id, status="error", error=text)
        with contextlib.suppress(Exception):
            await send(result.to_msg())

    async def _request_data(self, session: ShellSession, msg: protocol.Request) -> Any:
        loop = asyncio.get_running_loop()
        if isinstance(msg, protocol.Ping):
            return None
        if isinstance(msg, protocol.Stacks):
            return str(stacks_text(self.server))
        if isinstance(msg, protocol.Logs):
            return log_lines(self.server, max(0, msg.n))
        if isinstance(msg, protocol.Info):
            return self.target_info().to_msg()
        if isinstance(msg, protocol.Complete):
            from dask_cli.debug.service import completion

            completions = await loop.run_in_executor(
                None, completion.complete, msg.source, msg.cursor, session.namespace
            )
            return [vars(c) for c in completions]
        handler = features.request_handler(self.server, type(msg))
        if handler is None:
            raise protocol.ProtocolError(
                f"this {self.kind} does not answer {msg.op!r} requests "
                "(the feature that does is not installed here)"
            )
        data = handler(msg, session)
        if inspect.isawaitable(data):
            data = await data
        return data

    # --- what the service tells clients --------------------------------------

    def target_info(self) -> protocol.WorkerRecord:
        return target_info(self.server, self.address)


def banner(info: protocol.WorkerRecord, helpers: list[str]) -> str:
    """The welcome text: who this is and what its namespace offers."""
    kind = info.kind
    return (
        f"dask-cli shell in {kind} {info.name} ({info.address}, pid {info.pid})\n"
        f"Namespace: {', '.join(helpers)}. Top-level await runs on the "
        f"{kind}'s event loop; exit() ends the session, not the {kind}."
    )


_NOT_HELPERS = {"__name__", "__builtins__", "exit", "quit", "dask", "distributed"}


def helper_names(namespace: dict[str, Any]) -> list[str]:
    """What a new session's namespace offers, as the banner lists it: the server,
    its helpers (``tasks()``, ``story(key)``, ``pm(key)``), then dask and distributed."""
    shown = [
        _shown(name, value)
        for name, value in namespace.items()
        if name not in _NOT_HELPERS and not name.startswith("_")
    ]
    return [*shown, "dask", "distributed"]


def _shown(name: str, value: Any) -> str:
    """``name`` for a value, ``name()`` for a function, with its first argument when
    the user is expected to give one (``story(key)``, ``pm(key)``, not ``logs()``)."""
    if not inspect.isroutine(value):
        return name
    try:
        first = next(iter(inspect.signature(value).parameters.values()), None)
    except (TypeError, ValueError):  # a builtin without a signature
        first = None
    if first is None or first.default not in (inspect.Parameter.empty, None):
        return f"{name}()"
    argument = first.name.rstrip("s") if first.kind is first.VAR_POSITIONAL else first.name
    return f"{name}({argument})"


def shell_address(server: Any) -> str:
    """The address ``dask worker shell`` should use for ``server``: its shell
    service's, else the server's own (whose handler answers the shell address)."""
    service = getattr(server, "dask_cli_shell", None)
    return str(getattr(service, "address", None) or server.address)


def target_info(server: Any, shell: str | None = None) -> protocol.WorkerRecord:
    """``server`` as clients and the scheduler's worker list see it: the core's fields,
    then those its features set (``features.record_fields``). ``shell``: the shell
    service's address, when it is not yet ``server.dask_cli_shell``."""
    kind = server_kind(server)
    service = getattr(server, "dask_cli_shell", None)
    info = protocol.WorkerRecord(
        kind=kind,
        name=str(server.id if kind == "scheduler" else server.name),
        address=server.address,
        shell_address=shell or getattr(service, "address", None),
        status=getattr(getattr(server, "status", None), "name", "unknown"),
        pid=os.getpid(),
        host=_hostname(),
    )
    known = {f.name for f in dataclasses.fields(info)}
    for key, value in features.record_fields(server).items():
        if key in known:
            setattr(info, key, value)
    return info


@functools.cache
def _hostname() -> str:
    """This host's name (a system call: asked once per process)."""
    return socket.gethostname()


async def _flushed(comm: Any, timeout: float) -> bool:
    """Wait until ``comm`` has handed everything it was given to the socket.

    distributed's ``comm.write`` only queues the frames: when the client reads slower
    than the code prints, tornado's write buffer would grow without bound (measured:
    53 MB of 64 MB printed). Waiting here is the back-pressure that keeps streamed
    output bounded in the server's memory (``benchmarks/streaming.py``)."""
    stream = getattr(comm, "stream", None)
    if stream is None or not hasattr(stream, "write"):
        return True
    try:
        await asyncio.wait_for(stream.write(b""), timeout)
    except asyncio.TimeoutError:
        return False
    except Exception:  # closed: the next write reports it
        pass
    return True


def _socket_fd(comm: Any) -> int | None:
    """The file descriptor of a TCP or TLS comm's socket (None for other comms)."""
    try:
        return int(comm.stream.socket.fileno())
    except Exception:
        return None


def _no_offload(comm: Any) -> None:
    """Serialise this comm's messages inline. distributed first measures every message
    with ``sizeof`` (a recursive walk: a tenth of a short request's cost on the
    service) to decide whether to serialise it on its offload thread, which it does
    only above ``distributed.comm.offload`` (10 MiB); the shell's messages are
    small (output goes in chunks of 256 KiB), and the service's loop is its own."""
    if hasattr(comm, "allow_offload"):
        comm.allow_offload = False


def _spawn(tasks: set[asyncio.Task[Any]], coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _plain(client: dict[str, Any]) -> dict[str, Any]:
    """Keep the client's self-description small and serialisable (it goes to the audit log)."""
    return {str(k)[:64]: str(v)[:256] for k, v in list(client.items())[:16]}
