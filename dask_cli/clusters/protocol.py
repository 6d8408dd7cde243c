"""The holder's two wires, defined once for both ends.

1. Control requests: one JSON line over TCP to the holder on 127.0.0.1, one JSON
   line back (``{"ok": reply}`` or ``{"error": type, "message": text}``), one request
   per connection (:func:`serve`, :func:`request`). Plain asyncio rather than
   distributed's comm layer, so that ``dask cluster list|info|scale|stop`` never
   import distributed (about half a second) to ask a holder. Every request carries
   the cluster's ``token``, which only the user can read (it sits in the 0700 state
   folder); a request without the right token is refused.

   ============  ======================  =========================================
   op            arguments               reply
   ============  ======================  =========================================
   INFO          token                   :class:`ClusterInfo` as a dict
   SCALE         token, n                ``{"target": n}`` (scaling goes on after)
   STOP          token, grace            ``{"stopping": True}`` (the holder exits
                                         after a graceful close, at most ``grace`` s)
   ============  ======================  =========================================

2. Start-up events, one JSON object per line on a pipe the launching command hands
   the holder: STARTED (the scheduler is up: its address), READY (every requested
   worker has registered), FAILED (with ``error``). The launcher returns on READY
   (``--wait``) or STARTED (``--no-wait``), and reports FAILED or a closed pipe as
   an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

INFO = "cluster_info"
SCALE = "cluster_scale"
STOP = "cluster_stop"

STARTED = "started"
READY = "ready"
FAILED = "failed"


# A request or reply longer than this is refused (an info reply of 1000 workers is ~150 kB).
MAX_LINE = 16 * 2**20


class Unauthorized(Exception):
    """The request's token is not the cluster's."""


class RemoteError(Exception):
    """The holder failed to do what it was asked; ``kind`` is its exception's type name."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


Handler = Callable[..., Awaitable[Any]]


@dataclass
class WorkerSummary:
    name: str
    address: str
    nthreads: int = 0
    memory_limit: int = 0


@dataclass
class ClusterInfo:
    """What a holder (or, for clusters without one, the scheduler) says about a cluster now."""

    scheduler_address: str | None
    dashboard_link: str | None = None
    status: str = "running"
    target: int | None = None  # workers asked for (scale), when the manager has a target
    workers: list[WorkerSummary] = field(default_factory=list)

    @property
    def nthreads(self) -> int:
        return sum(w.nthreads for w in self.workers)

    @property
    def memory(self) -> int:
        return sum(w.memory_limit for w in self.workers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterInfo:
        data = dict(data)
        workers = [WorkerSummary(**w) for w in data.pop("workers", [])]
        known = set(cls.__dataclass_fields__)
        return cls(workers=workers, **{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_identity(cls, identity: dict[str, Any], target: int | None = None) -> ClusterInfo:
        """From the reply of the scheduler's own ``identity`` handler."""
        workers = [
            WorkerSummary(
                name=str(info.get("name", address)),
                address=address,
                nthreads=int(info.get("nthreads") or 0),
                memory_limit=int(info.get("memory_limit") or 0),
            )
            for address, info in (identity.get("workers") or {}).items()
        ]
        workers.sort(key=lambda w: (len(w.name), w.name))
        return cls(scheduler_address=identity.get("address"), target=target, workers=workers)


def event(kind: str, **fields: Any) -> bytes:
    """One start-up event line."""
    return (json.dumps({"event": kind, **fields}) + "\n").encode()


def parse_event(line: bytes) -> dict[str, Any]:
    """An event line back as a dict; a line that is not one is a FAILED event."""
    try:
        data = json.loads(line)
        if isinstance(data, dict) and "event" in data:
            return data
    except ValueError:
        pass
    return {"event": FAILED, "error": f"unexpected output from the holder: {line[:200]!r}"}


async def serve(handlers: dict[str, Handler], host: str = "127.0.0.1") -> tuple[Any, str]:
    """Answer control requests with ``handlers`` (op -> coroutine function taking the
    request's fields as keywords) on a free port of ``host``; the asyncio server and
    its address (``tcp://host:port``)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                fields = json.loads(await reader.readline())
                handler = handlers[fields.pop("op")]
                reply: dict[str, Any] = {"ok": await handler(**fields)}
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the asker
                reply = {"error": type(exc).__name__, "message": str(exc)}
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the asker went away
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, 0, limit=MAX_LINE)
    port = server.sockets[0].getsockname()[1]
    return server, f"tcp://{host}:{port}"


async def request(address: str, op: str, timeout: float, **fields: Any) -> Any:
    """Send ``op`` with ``fields`` to the holder at ``address``; its reply.

    Raises :class:`Unauthorized`, :class:`RemoteError` (the holder's own failure),
    ``OSError`` (nobody answers there) or ``asyncio.TimeoutError``.
    """
    host, _, port = address.removeprefix("tcp://").rpartition(":")

    async def ask() -> Any:
        reader, writer = await asyncio.open_connection(host, int(port), limit=MAX_LINE)
        try:
            writer.write(json.dumps({**fields, "op": op}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            raise ConnectionResetError(f"{address} closed the connection without a reply")
        try:
            reply = json.loads(line)
        except ValueError:
            raise ConnectionResetError(f"{address} sent a reply that is not JSON") from None
        if "error" in reply:
            if reply["error"] == Unauthorized.__name__:
                raise Unauthorized(reply.get("message") or "refused")
            raise RemoteError(str(reply["error"]), str(reply.get("message") or ""))
        return reply.get("ok")

    return await asyncio.wait_for(ask(), timeout)
