"""The client API every command calls: reach a worker by name, ask it something.

A command parses its options, calls one function here, and prints what it returns
through :mod:`dask_cli.output`. Everything about finding a worker (``resolve``),
connecting (``connect``) and speaking the shell protocol (``connection``) stays
behind these functions; failures arrive as ``DaskCliError`` subclasses with a
message and a hint.

Names accepted wherever ``target`` appears: a worker's name, its address, its shell
address, or an unambiguous prefix (see :func:`dask_cli.debug.names.resolve`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from dask_cli.debug import protocol
from dask_cli.debug.client.connect import TIMEOUT_HINT, close_comm, connect_comm, whoami
from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.resolve import list_workers, resolve_scheduler_shell, resolve_worker
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.names import resolve
from dask_cli.debug.protocol import WorkerRecord
from dask_cli.errors import ConnectionFailed, DaskCliError, RemoteError

__all__ = [
    "ExecOutcome",
    "exec_on_workers",
    "follow_logs",
    "list_workers",
    "open_shell",
    "release",
    "set_keepalive",
    "stacks",
    "logs",
    "shell_address",
]

# How often ``follow_logs`` asks for new lines, and how many it asks for each time.
FOLLOW_INTERVAL = 0.5
FOLLOW_WINDOW = 1000


async def shell_address(settings: ClientSettings, target: str | None) -> str:
    """The shell address of worker ``target`` (None: the scheduler's)."""
    if target is None:
        return await resolve_scheduler_shell(settings)
    record = await resolve_worker(settings, target)
    return record.shell_address or ""


async def open_shell(settings: ClientSettings, target: str | None) -> ShellConnection:
    """An open shell session on worker ``target`` (None: the scheduler). Close it."""
    address = await shell_address(settings, target)
    return await ShellConnection.open(address, settings.security(), settings.connect_timeout())


@contextlib.asynccontextmanager
async def _session(settings: ClientSettings, target: str) -> AsyncIterator[ShellConnection]:
    conn = await open_shell(settings, target)
    try:
        yield conn
    finally:
        await conn.close()


@dataclass
class WorkerText:
    """What a worker answered (``stacks``, ``logs``), and who it is."""

    target: WorkerRecord
    text: str = ""
    lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        found = {"worker": self.target.name, "address": self.target.address}
        return {**found, **({"lines": self.lines} if self.lines else {"stacks": self.text})}


async def stacks(settings: ClientSettings, target: str) -> WorkerText:
    """Every thread's stack in worker ``target`` (answered while its loop is blocked)."""
    async with _session(settings, target) as conn:
        return WorkerText(conn.target, text=await conn.stacks())


async def logs(settings: ClientSettings, target: str, n: int = 100) -> WorkerText:
    """The last ``n`` log lines of worker ``target``, oldest first."""
    async with _session(settings, target) as conn:
        return WorkerText(conn.target, lines=await conn.logs(n))


async def follow_logs(
    settings: ClientSettings,
    target: str,
    n: int = 100,
    interval: float = FOLLOW_INTERVAL,
) -> AsyncIterator[tuple[WorkerRecord, list[str]]]:
    """The last ``n`` lines, then each new batch of lines as the worker logs them,
    over one session, until the caller stops or the worker goes away.

    The service keeps the last lines, not a cursor: each poll asks for the last
    :data:`FOLLOW_WINDOW` lines and yields those after the longest overlap with
    the previous answer (more than that many lines within ``interval`` are lost)."""
    async with _session(settings, target) as conn:
        previous = await conn.logs(max(n, FOLLOW_WINDOW))
        yield conn.target, previous[-n:] if n else []
        while True:
            await asyncio.sleep(interval)
            current = await conn.logs(FOLLOW_WINDOW)
            fresh = current[_overlap(previous, current) :]
            if fresh:
                yield conn.target, fresh
            previous = current


def _overlap(previous: list[str], current: list[str]) -> int:
    """Length of the longest suffix of ``previous`` that is a prefix of ``current``."""
    for size in range(min(len(previous), len(current)), 0, -1):
        if previous[-size:] == current[:size]:
            return size
    return 0


async def _target_request(settings: ClientSettings, target: str, request: Any) -> WorkerRecord:
    async with _session(settings, target) as conn:
        result = await conn.request(request)
    if result.status != "ok":
        text = (result.traceback or "request failed").strip().splitlines()[-1]
        message = result.error or text
        raise RemoteError(message, hint=result.hint)
    return WorkerRecord.from_msg(result.data)


async def set_keepalive(settings: ClientSettings, target: str, enabled: bool) -> WorkerRecord:
    """Switch keep-alive on worker ``target``; its state after the switch."""
    return await _target_request(settings, target, protocol.SetKeepalive(id=0, enabled=enabled))


async def release(settings: ClientSettings, target: str) -> WorkerRecord:
    """Let the kept-alive worker ``target`` exit; its state just before it does."""
    return await _target_request(settings, target, protocol.Release(id=0))


# --- exec on many workers ------------------------------------------------------


@dataclass
class ExecOutcome:
    """What one worker did with ``dask worker exec``: its output, in order, and status."""

    name: str
    address: str
    chunks: list[tuple[str, str]] = field(default_factory=list)
    status: str = "ok"
    traceback: str | None = None
    error: str | None = None  # could not connect / resolve

    @property
    def failed(self) -> bool:
        return self.error is not None or self.status not in ("ok", "exit")

    @property
    def reason(self) -> str:
        """Why it failed, in a few words (the last line of its traceback)."""
        if self.error:
            return self.error
        if self.traceback:
            return self.traceback.strip().splitlines()[-1]
        return self.status

    def text(self, stream: str) -> str:
        return "".join(text for s, text in self.chunks if s == stream)

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.name,
            "address": self.address,
            "status": "failed" if self.error else self.status,
            "stdout": self.text("stdout"),
            "stderr": self.text("stderr"),
            "traceback": self.traceback,
            "error": self.error,
        }


class ExecListener:
    """What ``exec_on_workers`` reports while it runs; the defaults ignore it all."""

    def start(self, names: list[str]) -> None:
        """The workers it runs on, before any output."""

    def output(self, name: str, stream: str, text: str) -> None:
        """Text a worker's code wrote, as it arrives."""

    def done(self, outcome: ExecOutcome) -> None:
        """One worker finished (or could not be reached)."""


async def exec_on_workers(
    settings: ClientSettings,
    targets: list[str] | None,
    source: str,
    listener: ExecListener | None = None,
) -> list[ExecOutcome]:
    """Run ``source`` on the named workers (None: every worker with a shell) at once;
    ``listener`` sees output as it arrives and each worker as it finishes. Returns
    the outcomes in the order of the targets.

    Through the scheduler (one connection from here, the scheduler's own to the
    workers: ``dask_cli.debug.service.fanout``); a scheduler without that feature
    gets one shell connection per worker instead."""
    listener = listener or ExecListener()
    records = await list_workers(settings)
    chosen = _exec_targets(records, targets)
    listener.start([r.name for r in chosen])
    outcomes = await _exec_through_scheduler(settings, chosen, source, listener)
    if outcomes is None:
        outcomes = await _exec_direct(settings, chosen, source, listener)
    return outcomes


async def _exec_through_scheduler(
    settings: ClientSettings, chosen: list[WorkerRecord], source: str, listener: ExecListener
) -> list[ExecOutcome] | None:
    """None when the scheduler has no fan-out handler (it answers None)."""
    address = settings.scheduler_address()
    timeout = settings.connect_timeout()
    comm = await connect_comm(address, settings.security(), timeout, "scheduler")
    outcomes = {r.name: ExecOutcome(r.name, r.address) for r in chosen}
    try:
        await comm.write(
            {
                "op": protocol.EXEC_HANDLER,
                "workers": [{"name": r.name, "address": r.address} for r in chosen],
                "source": source,
                "client": whoami(),
                "start_within": timeout,
                "reply": True,
            }
        )
        while True:
            # The scheduler says it is alive every timeout / 2 while code runs.
            raw = await asyncio.wait_for(comm.read(), timeout)
            if raw is None:
                return None
            msg = protocol.parse(raw, protocol.EXEC_MESSAGES)
            if isinstance(msg, protocol.ExecOutput):
                outcome = outcomes[msg.worker]
                outcome.chunks.append((msg.stream, msg.text))
                listener.output(msg.worker, msg.stream, msg.text)
            elif isinstance(msg, protocol.ExecDone):
                outcome = outcomes[msg.worker]
                outcome.status, outcome.traceback, outcome.error = (
                    msg.status,
                    msg.traceback,
                    msg.error,
                )
                listener.done(outcome)
            elif isinstance(msg, protocol.ExecEnd):
                break
    except asyncio.TimeoutError:
        raise ConnectionFailed(
            f"The scheduler at {address} stopped answering: nothing for {timeout:g} s "
            "(is it frozen?)",
            hint=TIMEOUT_HINT,
        ) from None
    except (OSError, protocol.ProtocolError, KeyError) as exc:
        raise ConnectionFailed(f"Lost the exec stream from {address}: {exc}") from None
    finally:
        await close_comm(comm)
    return [outcomes[r.name] for r in chosen]


async def _exec_direct(
    settings: ClientSettings, chosen: list[WorkerRecord], source: str, listener: ExecListener
) -> list[ExecOutcome]:
    security = settings.security()  # once, not per worker
    timeout = settings.connect_timeout()

    async def one(record: WorkerRecord) -> ExecOutcome:
        outcome = ExecOutcome(record.name, record.address)

        def on_output(stream: str, text: str) -> None:
            outcome.chunks.append((stream, text))
            listener.output(record.name, stream, text)

        try:
            if not record.shell_address:
                raise DaskCliError("no shell service")
            conn, result = await ShellConnection.open_and_eval(
                record.shell_address,
                source,
                security,
                timeout,
                mode="exec",
                on_output=on_output,
                filename="<exec>",
            )
        except DaskCliError as exc:
            outcome.error = exc.message
        else:
            outcome.status = result.status
            outcome.traceback = result.traceback
            outcome.error = result.error
            await conn.close()
        listener.done(outcome)
        return outcome

    return list(await asyncio.gather(*(one(r) for r in chosen)))


def _exec_targets(records: list[WorkerRecord], targets: list[str] | None) -> list[WorkerRecord]:
    if targets is None:
        chosen = [r for r in records if r.shell_address]
        if not chosen:
            raise DaskCliError(
                "No worker with a shell service",
                hint="See `dask worker list`; workers started with `dask worker` have one.",
            )
        return chosen
    found = [resolve(records, query) for query in targets]
    return list({r.address: r for r in found}.values())
