"""Non-interactive runs: ``-c CODE``, a script, or code on stdin. Output streams to
our stdout/stderr as the remote code produces it; the exit status is 1 when the code
raised."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from dask_cli.debug import protocol
from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.protocol import Result
from dask_cli.errors import DaskCliError

INTERRUPTED_EXIT = 130
# Our stdout was closed (``| head``): the status of a process killed by SIGPIPE.
CLOSED_STDOUT_EXIT = 128 + 13


def exit_status(result: Result) -> int:
    """As ``python`` has it: 0 ok, 1 when the code raised, the ``SystemExit`` status
    (the result's value) for ``exit``, 130 when interrupted."""
    if result.status == "error":
        return 1
    if result.status == "interrupted":
        return INTERRUPTED_EXIT
    if result.status == "exit":
        try:
            return int(result.value or 0)
        except ValueError:
            return 1
    return 0


class _Output:
    """Writes remote output to our stdout/stderr; a closed stdout (``| head``) stops
    the run instead of failing it."""

    def __init__(self, stdout: TextIO, stderr: TextIO, on_closed: Callable[[], None]):
        self.stdout = stdout
        self.stderr = stderr
        self.on_closed = on_closed
        self.closed = False

    def write(self, stream: str, text: str) -> None:
        if self.closed:
            return
        target = self.stderr if stream == "stderr" else self.stdout
        try:
            target.write(text)
            target.flush()
        except (BrokenPipeError, ValueError):  # ValueError: a stream closed in-process
            self.closed = True
            _silence(target)
            self.on_closed()


def _silence(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null, so Python's flush at exit does not
    print a second BrokenPipeError."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def _line_reader(stdin: TextIO | None) -> Callable[[str], Any]:
    """``input()`` in the remote code reads a line of our stdin (None: end of file)."""

    async def read_line(prompt: str) -> str | None:
        if stdin is None:
            return None
        line = await asyncio.get_running_loop().run_in_executor(None, stdin.readline)
        return line or None

    return read_line


async def run_source(
    conn: ShellConnection,
    source: str,
    filename: str = "<string>",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run ``source`` as a script on ``conn``; stream output; return the exit status.

    SIGINT (Ctrl-C) interrupts the remote code instead of killing this process; a
    closed stdout stops it and returns ``CLOSED_STDOUT_EXIT`` quietly. ``stdin``
    answers the code's ``input()`` and ``sys.stdin`` (None: end of file).
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    loop = asyncio.get_running_loop()
    task: asyncio.Future[Result] | None = None

    def stop() -> None:
        if task is not None:
            loop.call_soon(task.cancel)  # conn.eval interrupts the remote code

    output = _Output(stdout, stderr, stop)
    task = asyncio.ensure_future(
        conn.eval(
            source,
            mode="exec",
            on_output=output.write,
            on_input=_line_reader(stdin),
            filename=filename,
        )
    )
    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(conn.interrupt()))
        handled = True
    try:
        result = await task
    except asyncio.CancelledError:
        if not output.closed:
            raise
        return CLOSED_STDOUT_EXIT
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
    if output.closed:
        return CLOSED_STDOUT_EXIT
    with contextlib.suppress(BrokenPipeError, ValueError):
        if result.status == "error" and (result.traceback or result.error):
            stderr.write(result.traceback or f"{result.error}\n")
        elif result.status == "exit" and result.traceback:
            stderr.write(result.traceback)
        elif result.status == "interrupted":
            stderr.write(protocol.dropped_notice(result.dropped) + "KeyboardInterrupt\n")
        stderr.flush()
    return exit_status(result)


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
        code, filename = source
        # The code's input() reads our stdin, unless the code itself came from it.
        stdin = None if filename == "<stdin>" else sys.stdin
        return await run_source(conn, code, filename, stdin=stdin)
    finally:
        await conn.close()
