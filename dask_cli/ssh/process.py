"""One remote ``dask scheduler``/``dask worker`` process on an SSH channel.

Its stdout and stderr are read for as long as it runs, never only during start-up:
an SSH channel whose output nobody reads fills its window and blocks the remote
process on its next log line (distributed issue 9033). Every line is parsed for
the few that say how start-up goes, kept in a short tail for error reports,
written to the log file if there is one, and handed on to be shown.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import asyncssh

from dask_cli.ssh.connect import HostConnection
from dask_cli.ssh.remote import MARKER

TAIL_LINES = 15

_PID = re.compile(rf"^{re.escape(MARKER)} pid (\d+)")
_SCHEDULER_AT = re.compile(r"Scheduler at:\s+(\S+)")
_WORKER_AT = re.compile(r"Start worker at:\s+(\S+)")
_REGISTERED = re.compile(r"Registered to:\s+(\S+)")


@dataclass
class ProcessState:
    """What the output said so far."""

    pid: int | None = None
    scheduler_address: str | None = None
    worker_addresses: list[str] = field(default_factory=list)
    registered: int = 0


class RemoteProcess:
    """``command`` on ``host``, labelled ``label`` (``scheduler HOST``, ``worker HOST``).

    ``on_line(process, line)`` is called for every line of output that is not one of
    our own markers; ``on_change(process)`` when :attr:`state` changed or it exited.
    """

    def __init__(
        self,
        role: str,
        label: str,
        host: HostConnection,
        command: str,
        on_line: Callable[[RemoteProcess, str], None],
        on_change: Callable[[RemoteProcess], None],
        log_file: IO[str] | None = None,
    ):
        self.role = role
        self.label = label
        self.host = host
        self.command = command
        self.state = ProcessState()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.exited = asyncio.Event()
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self._on_line = on_line
        self._on_change = on_change
        self._log_file = log_file
        self._proc = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._proc = await self.host.connection.create_process(
            self.command, encoding="utf-8", errors="replace"
        )
        self._task = asyncio.create_task(self._run(), name=f"dask-ssh {self.label}")

    async def _run(self) -> None:
        assert self._proc is not None
        try:
            await asyncio.gather(self._drain(self._proc.stdout), self._drain(self._proc.stderr))
            await self._proc.wait_closed()
        except Exception as exc:  # noqa: BLE001 - a lost connection ends this process only
            self.tail.append(f"(connection lost: {exc})")
        finally:
            self.exit_status = self._proc.exit_status
            signal = self._proc.exit_signal
            self.exit_signal = signal[0] if signal else None
            if self._log_file is not None:
                self._log_file.close()
            self.exited.set()
            self._on_change(self)

    async def _drain(self, stream) -> None:
        while True:
            line = await stream.readline()
            if not line:
                return
            line = line.rstrip("\r\n")
            if self._log_file is not None:
                self._log_file.write(line + "\n")
                self._log_file.flush()
            if self._parse(line):
                continue
            self.tail.append(line)
            self._on_line(self, line)

    def _parse(self, line: str) -> bool:
        """Update :attr:`state` from ``line``; True for our own markers (not shown)."""
        if line.startswith(MARKER):
            match = _PID.match(line)
            if match:
                self.state.pid = int(match.group(1))
                self._on_change(self)
                return True
            return False
        for pattern, update in (
            (_SCHEDULER_AT, self._set_scheduler_address),
            (_WORKER_AT, self.state.worker_addresses.append),
            (_REGISTERED, self._count_registration),
        ):
            match = pattern.search(line)
            if match:
                update(match.group(1))
                self._on_change(self)
                break
        return False

    def _set_scheduler_address(self, address: str) -> None:
        self.state.scheduler_address = address

    def _count_registration(self, _address: str) -> None:
        self.state.registered += 1

    @property
    def running(self) -> bool:
        return self._proc is not None and not self.exited.is_set()

    def send(self, line: str) -> None:
        """One line on the process's stdin (the scheduler address, for a waiting worker)."""
        if self.running:
            with contextlib.suppress(OSError, asyncssh.Error):
                self._proc.stdin.write(line + "\n")

    def stop(self) -> None:
        """Close stdin: the remote wrapper then stops the process (SIGTERM, later SIGKILL)."""
        if self.running:
            with contextlib.suppress(OSError, asyncssh.Error):
                self._proc.stdin.write_eof()

    def abort(self) -> None:
        """Close the channel at once; the remote wrapper still sees its stdin close."""
        if self.running:
            self._proc.close()

    def describe_exit(self) -> str:
        if self.exit_signal:
            return f"was killed by SIG{self.exit_signal}"
        if self.exit_status is None:
            return "lost its SSH connection"
        return f"exited with status {self.exit_status}"
