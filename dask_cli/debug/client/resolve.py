"""From what the user typed (a name, an address, a prefix) to a worker's shell address.

The scheduler is only used to resolve names: once the shell address is known the
client connects to the worker directly, so an address still works after the
scheduler died.
"""

from __future__ import annotations

import asyncio
from typing import Any

from dask_cli.debug import protocol
from dask_cli.debug.client.connect import classify, close_comm, connect_comm
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.names import build_records, resolve
from dask_cli.debug.protocol import WorkerRecord
from dask_cli.errors import ConnectionFailed, DaskCliError, RemoteError, WorkerNotFound

# With an address to fall back on, wait at most this long for the scheduler.
SCHEDULER_WAIT_FOR_ADDRESS = 2.0


class _Server:
    """One comm to a scheduler (or a worker: ``what``) for one or more requests."""

    def __init__(self, settings: ClientSettings, address: str, timeout: float | None, what: str):
        self.settings = settings
        self.address = address
        self.timeout = timeout or settings.connect_timeout()
        self.what = what
        self.comm: Any = None

    async def __aenter__(self) -> _Server:
        self.comm = await connect_comm(
            self.address, self.settings.security(), self.timeout, self.what
        )
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await close_comm(self.comm)

    async def ask(self, op: str, **kwargs: Any) -> Any:
        """``op``'s answer, bounded by ``timeout``; a failure to answer is
        ``ConnectionFailed``, an error answered by the server ``RemoteError``."""
        from distributed.core import send_recv

        try:
            return await asyncio.wait_for(
                send_recv(self.comm, op=op, serializers=("msgpack",), **kwargs), self.timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise classify(self.address, exc, self.timeout, self.what, "handshake") from None
        except Exception as exc:
            raise RemoteError(str(exc)) from exc


async def call(
    settings: ClientSettings,
    address: str,
    op: str,
    timeout: float | None = None,
    what: str = "scheduler",
    **kwargs: Any,
) -> Any:
    """One request to the scheduler (or a worker: ``what``) at ``address``.

    Connecting and the request are each bounded by ``timeout``. Connection problems
    (unreachable, frozen, TLS refused) become ``ConnectionFailed``; an error
    answered by the server becomes ``RemoteError``.
    """
    async with _Server(settings, address, timeout, what) as server:
        return await server.ask(op, **kwargs)


async def list_workers(
    settings: ClientSettings, timeout: float | None = None
) -> list[WorkerRecord]:
    """Every worker the scheduler knows (and kept-alive ones that left it): the one
    way to list workers (``dask worker list``, ``exec``, name completion)."""
    async with _Server(settings, settings.scheduler_address(), timeout, "scheduler") as server:
        try:
            records = await server.ask(protocol.WORKERS_HANDLER)
        except RemoteError:
            records = None
        if isinstance(records, (list, tuple)):
            return [WorkerRecord.from_msg(r) for r in records if isinstance(r, dict)]
        # A scheduler without our plugin (it answers None to an unknown handler):
        # compute the same records here, on the same connection.
        identity = await server.ask("identity")
        metadata = await server.ask(
            "get_metadata", keys=[protocol.METADATA_KEY, "workers"], default={}
        )
    workers = {
        addr: {
            "name": info.get("name", addr),
            "status": info.get("status", "unknown"),
            "nthreads": info.get("nthreads"),
            "memory_limit": info.get("memory_limit"),
            "tasks": (info.get("metrics") or {}).get("executing", 0),
        }
        for addr, info in (identity.get("workers") or {}).items()
    }
    return build_records(workers, metadata)


def _looks_like_address(query: str) -> bool:
    if "://" in query:
        return True
    host, _, port = query.rpartition(":")
    return bool(host) and port.isdigit()


async def resolve_worker(settings: ClientSettings, query: str) -> WorkerRecord:
    """The worker ``query`` names, with its shell address.

    An address the scheduler cannot resolve goes direct: when no scheduler is
    reachable, or the scheduler knows no such worker (it knows workers by the
    address they advertise, often an IP, while the user may type a hostname), we
    ask the address itself for its shell address (``SHELL_ADDRESS_HANDLER``), or
    take it as the shell address when a shell service answers there.
    """
    looks_like_address = _looks_like_address(query)
    scheduler_error: DaskCliError | None = None
    if settings.has_scheduler() or not looks_like_address:
        try:
            # Given an address, do not wait long for a scheduler that may be gone:
            # the worker itself can answer.
            timeout = None
            if looks_like_address:
                timeout = min(settings.connect_timeout(), SCHEDULER_WAIT_FOR_ADDRESS)
            record = resolve(await list_workers(settings, timeout), query)
        except (ConnectionFailed, WorkerNotFound) as exc:
            if not looks_like_address:
                raise
            scheduler_error = exc
        else:
            if not record.shell_address:
                raise ConnectionFailed(
                    f"Worker {record.name!r} has no shell service",
                    hint="Start workers with `dask worker` (shell on by default) or "
                    "`--preload dask_cli.debug`; `--no-shell` turns it off.",
                )
            return record
    return await _resolve_direct(settings, query, scheduler_error)


async def _resolve_direct(
    settings: ClientSettings, query: str, scheduler_error: DaskCliError | None
) -> WorkerRecord:
    """``query`` is an address: a worker's (ask its shell address) or a shell's."""
    address = query if "://" in query else _default_scheme(settings) + query
    try:
        shell = await call(settings, address, protocol.SHELL_ADDRESS_HANDLER, what="worker")
    except RemoteError:
        shell = None
    except ConnectionFailed as exc:
        if isinstance(scheduler_error, WorkerNotFound):
            # Neither the address nor the scheduler knows it: say both.
            raise ConnectionFailed(exc.message, hint=scheduler_error.message) from None
        raise
    if isinstance(shell, str) and shell:
        return WorkerRecord(name=query, address=address, shell_address=shell, status="unknown")
    if isinstance(shell, dict) and shell.get("op") == "error":
        # The address answered like a shell service: it is one.
        return WorkerRecord(name=query, address=address, shell_address=address)
    if scheduler_error is not None:
        raise scheduler_error
    raise ConnectionFailed(f"No dask-cli shell service at {address}")


def _default_scheme(settings: ClientSettings) -> str:
    return "tls://" if settings.security().require_encryption else "tcp://"


async def resolve_scheduler_shell(settings: ClientSettings) -> str:
    """The scheduler's shell address (its ``SHELL_ADDRESS_HANDLER``)."""
    address = settings.scheduler_address()
    try:
        shell = await call(settings, address, protocol.SHELL_ADDRESS_HANDLER)
    except RemoteError:
        shell = None
    if not isinstance(shell, str) or not shell:
        raise ConnectionFailed(
            f"The scheduler at {address} has no shell service",
            hint="Start it with `dask scheduler` (shell on by default) or "
            "`--preload dask_cli.debug`.",
        )
    return shell
