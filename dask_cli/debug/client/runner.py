"""Non-interactive runs: ``-c CODE``, a script, or code on stdin; and ``exec`` on many
workers at once. Output streams to our stdout/stderr as the remote code produces it;
the exit status is 1 when the code raised."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.resolve import resolve_worker
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.protocol import Result
from dask_cli.errors import DaskCliError

INTERRUPTED_EXIT = 130


def exit_status(result: Result) -> int:
    """0 ok (or ``exit()``), 1 when the code raised, 130 when interrupted."""
    if result.status == "error":
        return 1
    if result.status == "interrupted":
        return INTERRUPTED_EXIT
    return 0


def _writer(stdout: TextIO, stderr: TextIO) -> Callable[[str, str], None]:
    def write(stream: str, text: str) -> None:
        target = stderr if stream == "stderr" else stdout
        target.write(text)
        target.flush()

    return write


async def run_source(
    conn: ShellConnection,
    source: str,
    filename: str = "<string>",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``source`` as a script on ``conn``; stream output; return the exit status.

    SIGINT (Ctrl-C) interrupts the remote code instead of killing this process.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(
        conn.eval(source, mode="exec", on_output=_writer(stdout, stderr), filename=filename)
    )
    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(conn.interrupt()))
        handled = True
    try:
        result = await task
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
    if result.status == "error" and (result.traceback or result.error):
        stderr.write(result.traceback or f"{result.error}\n")
    elif result.status == "interrupted":
        stderr.write("KeyboardInterrupt\n")
    stderr.flush()
    return exit_status(result)


async def run_on_worker(
    settings: ClientSettings, query: str, source: str, filename: str = "<string>"
) -> int:
    """``dask worker shell NAME -c CODE``: resolve, connect, run, return the exit status."""
    record = await resolve_worker(settings, query)
    assert record.shell_address
    conn = await ShellConnection.open(
        record.shell_address, settings.security(), settings.connect_timeout()
    )
    try:
        return await run_source(conn, source, filename)
    finally:
        await conn.close()


async def run_on_address(
    settings: ClientSettings, shell_address: str, source: str, filename: str = "<string>"
) -> int:
    conn = await ShellConnection.open(
        shell_address, settings.security(), settings.connect_timeout()
    )
    try:
        return await run_source(conn, source, filename)
    finally:
        await conn.close()


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


async def exec_on_workers(
    settings: ClientSettings, queries: list[str] | None, source: str
) -> list[ExecOutcome]:
    """Run ``source`` on the named workers (None: all) concurrently; output per worker."""
    from dask_cli.debug.client.resolve import list_workers
    from dask_cli.debug.names import resolve

    records = await list_workers(settings)
    if queries is None:
        targets = [r for r in records if r.shell_address]
        if not targets:
            raise DaskCliError("No worker with a shell service", hint="See `dask worker list`.")
    else:
        targets = [resolve(records, q) for q in queries]
        targets = list({r.address: r for r in targets}.values())

    security = settings.security()  # once, not per worker
    timeout = settings.connect_timeout()

    async def one(record: Any) -> ExecOutcome:
        outcome = ExecOutcome(record.name, record.address)
        if not record.shell_address:
            outcome.error = "no shell service"
            return outcome
        try:
            conn, result = await ShellConnection.open_and_eval(
                record.shell_address,
                source,
                security,
                timeout,
                mode="exec",
                on_output=lambda stream, text: outcome.chunks.append((stream, text)),
                filename="<exec>",
            )
        except DaskCliError as exc:
            outcome.error = exc.message
            return outcome
        outcome.status = result.status
        outcome.traceback = result.traceback
        outcome.error = result.error
        await conn.close()
        return outcome

    return list(await asyncio.gather(*(one(r) for r in targets)))


def read_source(code: str | None, script: str | None, stdin: TextIO) -> tuple[str, str] | None:
    """The code a non-interactive run executes, and its file name; None: interactive.

    ``-c CODE`` wins, then a script path (``-`` is stdin), then stdin when it is
    not a terminal.
    """
    if code is not None:
        return code, "<string>"
    if script == "-" or (script is None and not stdin.isatty()):
        return stdin.read(), "<stdin>"
    if script is not None:
        try:
            with open(script, encoding="utf-8") as f:
                return f.read(), script
        except OSError as exc:
            raise DaskCliError(f"Cannot read {script}: {exc.strerror}") from None
    return None


async def shell(
    settings: ClientSettings,
    shell_address: Callable[[], Any],
    source: tuple[str, str] | None,
) -> int:
    """Open a session at the address ``await shell_address()`` gives; run ``source``
    (non-interactive) or the REPL; return the exit status."""
    address = await shell_address()
    conn = await ShellConnection.open(address, settings.security(), settings.connect_timeout())
    try:
        if source is None:
            from dask_cli.debug.client.repl import run_repl

            return int(await run_repl(conn) or 0)
        return await run_source(conn, source[0], source[1])
    finally:
        await conn.close()
