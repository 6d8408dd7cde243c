"""Per-session stdout/stderr/stdin without swapping the process's streams for others.

A worker's task output and its log handlers must keep going where they went
before a shell session started. So instead of replacing ``sys.stdout`` per
session (as manhole does), we install once a proxy that forwards to the original
stream unless the current context (a contextvar, set by the session's thread or
its coroutine) belongs to a session. Logging handlers keep a reference to the
original stream object and are never affected.
"""

from __future__ import annotations

import _thread
import contextvars
import io
import itertools
import sys
import threading
from collections.abc import Callable
from typing import Any

from dask_cli.debug.service.loop import CHECK_EVERY, LoopGate, release

# Send output as soon as this much is buffered, without waiting for the timer.
FLUSH_BYTES = 64 * 1024
# The eval's thread waits while this much output waits to be sent (back-pressure).
MAX_PENDING_BYTES = 1024 * 1024
# ... or while this many writes wait (checked every ``CHECK_EVERY`` writes). A print
# loop of short lines left 290,000 strings for 1 MiB: Ctrl-C freed them on the
# service's loop (1.5 ms) and each take moved the rest of the list (0.2 ms).
MAX_PENDING_WRITES = 4096
# Send output at once when this many writes are buffered, as for ``FLUSH_BYTES``:
# short lines reach MAX_PENDING_WRITES long before FLUSH_BYTES.
FLUSH_WRITES = MAX_PENDING_WRITES // 2
# Other threads (await code on the server's event loop) never wait: past this much
# their output is dropped, with one line that says so.
MAX_UNWAITED_BYTES = 16 * MAX_PENDING_BYTES
# A waiting writer looks again this often even if no wake-up came.
ROOM_POLL = 0.05
# One ``take`` joins at most this many writes (a fraction of a millisecond): the
# service's loop reads the client's Ctrl-C or a new connection between two takes.
TAKE_MAX_WRITES = 16384

_Write = str | tuple[str, str]  # a write to stdout is its text, to another stream a pair


def _stream_of(write: _Write) -> str:
    return "stdout" if type(write) is str else write[0]


def _text_of(write: _Write) -> str:
    return write if type(write) is str else write[1]


class SessionOutput:
    """The output of one eval: a bounded buffer written by the code, drained by the service.

    Written from the thread running the code, where a Ctrl-C (an exception raised
    asynchronously in that thread) can arrive at any bytecode. So nothing here holds
    a lock the service's loop needs: the writes go into a list that writers only
    append to and the loop only cuts from the front (each one C call, atomic under
    the GIL, so a take is a slice and a join: a print loop's 100,000 writes once
    took the loop 9 ms to drain one by one, while the client's Ctrl-C waited),
    each counter has one writer, the writer waits for room on a raw lock
    that only the writer acquires and the loop only releases (never blocking), and
    the loop is woken through ``on_data(urgent)`` (``urgent``: FLUSH_BYTES passed).
    An exception at any point costs at most a wake-up (the loop also drains when
    the eval ends) or a chunk of this eval's output, never the next eval's.

    ``read_line`` is how ``input()`` in the session reaches the client. ``gate``:
    the service loop's :class:`~dask_cli.debug.service.loop.LoopGate`, at which the
    eval's thread waits every ``CHECK_EVERY`` writes while the loop has work.
    """

    def __init__(
        self,
        on_data: Callable[[bool], None],
        read_line: Callable[[str], str | None],
        waiting_thread: int | None = None,
        on_flood: Callable[[], None] | None = None,
        gate: LoopGate | None = None,
    ):
        self._gate = gate
        self._until_gate = CHECK_EVERY
        self._on_data = on_data
        self._on_flood = on_flood
        self._read_line = read_line
        self._writes: list[_Write] = []
        self._written = 0  # by writers
        self._taken = 0  # by the loop
        self._loop_idle = True  # set by the loop before it drains, cleared by a writer
        self._urgent_sent = False
        self._room = _thread.allocate_lock()
        self._held = _thread.allocate_lock()  # where this writer waits at the gate
        self._poll: Any = None  # the gate's sockets, polled by this writer
        self._poll_version = -1  # the gate's ``watched_version`` it was made for
        self._dropped = False
        # Only this thread (the eval's) waits for room; None: the first writer.
        self.waiting_thread = waiting_thread
        self.closed = False

    @property
    def pending(self) -> int:
        return self._written - self._taken

    def write(self, stream: str, text: str) -> None:
        # Called twice per print(): every attribute read and call here counts.
        if not text or self.closed:
            return
        self._until_gate -= 1
        if self._until_gate <= 0:
            self._until_gate = CHECK_EVERY
            if threading.get_ident() == self.waiting_thread:
                if self._gate is not None:
                    self._step_aside(self._gate)
                count = len(self._writes)
                if count >= FLUSH_WRITES and not self._urgent_sent:
                    self._urge()
                if count > MAX_PENDING_WRITES and not self._wait_for_room():
                    return
        if self._written - self._taken > MAX_PENDING_BYTES and not self._wait_for_room():
            return
        self._writes.append(text if stream == "stdout" else (stream, text))
        self._written = written = self._written + len(text)
        if self._loop_idle:
            self._loop_idle = False
            self._on_data(written - self._taken >= FLUSH_BYTES)
        elif not self._urgent_sent and written - self._taken >= FLUSH_BYTES:
            self._urge()

    def _urge(self) -> None:
        """Have the loop send now, not after its flush interval."""
        self._urgent_sent = True
        self._on_data(True)
        if self._on_flood is not None and threading.get_ident() == self.waiting_thread:
            # FLUSH_BYTES or FLUSH_WRITES faster than the flush interval: a flood.
            on_flood, self._on_flood = self._on_flood, None
            on_flood()

    def _step_aside(self, gate: LoopGate) -> None:
        """Let the service's loop go first while it has work (see ``loop.py``)."""
        if self._poll_version != gate.watched_version:
            self._poll_version = gate.watched_version
            self._poll = gate.new_poll()
        if gate.busy(self._poll):
            gate.hold(self._held)

    def _wait_for_room(self) -> bool:
        """Wait (the eval's thread) until the service took the output; False: drop it."""
        if self.waiting_thread is None:
            self.waiting_thread = threading.get_ident()
        if threading.get_ident() != self.waiting_thread:
            if self.pending <= MAX_UNWAITED_BYTES:
                return True
            if not self._dropped:
                self._dropped = True
                self._writes.append(("stderr", "\n[output dropped: the client reads too slowly]\n"))
            return False
        while self._full() and not self.closed:
            self._room.acquire(False)  # armed: the next acquire waits for ``take``
            if not self._full() or self.closed:
                break
            self._room.acquire(timeout=ROOM_POLL)
        return not self.closed

    def _full(self) -> bool:
        return self.pending > MAX_PENDING_BYTES or len(self._writes) > MAX_PENDING_WRITES

    def take(self) -> list[tuple[str, str]]:
        """The oldest writes buffered (at most ``TAKE_MAX_WRITES``), as (stream, text)
        with consecutive writes to one stream joined; lets a waiting writer go on.
        Called on the service loop; ``backlog`` tells whether more are left."""
        self._loop_idle = True  # before draining: a later write wakes the loop again
        self._urgent_sent = False
        writes = self._writes
        count = min(len(writes), TAKE_MAX_WRITES)
        batch = writes[:count]
        del writes[:count]  # a writer appends meanwhile at the end only
        if not batch:
            joined = []
        else:
            try:
                joined = [("stdout", "".join(batch))]  # the common case: stdout alone
            except TypeError:  # a write to another stream is among them
                joined = [
                    (stream, "".join(map(_text_of, group)))
                    for stream, group in itertools.groupby(batch, key=_stream_of)
                ]
        self._taken += sum(len(text) for _, text in joined)
        self._let_writer_go()
        return joined

    def discard(self) -> int:
        """Drop what is buffered and not yet taken (the loop, at Ctrl-C); what the code
        writes later is kept. Returns the characters dropped (the result says how
        many, ``protocol.Result.dropped``).

        After Ctrl-C on a print loop up to ``MAX_PENDING_BYTES`` were still to be
        sent: streaming them kept the service, the client and the terminal busy
        for milliseconds after the user asked for the code to stop."""
        dropped = self.pending
        self._writes = []  # a writer appending to the old list at this moment: dropped too
        self._taken = self._written
        self._let_writer_go()
        return max(dropped, 0)

    @property
    def backlog(self) -> bool:
        """Writes are still buffered after a ``take``."""
        return bool(self._writes)

    def _let_writer_go(self) -> None:
        release(self._room)

    def readline(self, prompt: str = "") -> str:
        if self.closed:
            return ""
        text = self._read_line(prompt)
        if text is None:
            return ""
        return text if text.endswith("\n") else text + "\n"

    def close(self) -> None:
        """No more output accepted (an abandoned eval's later output is dropped)."""
        self.closed = True
        self._let_writer_go()


current_output: contextvars.ContextVar[SessionOutput | None] = contextvars.ContextVar(
    "dask_cli_shell_output", default=None
)


class RoutedStream(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``: the session's output if the current
    context belongs to one, else the original stream (task output, logs)."""

    def __init__(self, original: Any, name: str):
        self._original = original
        self._name = name

    def _target(self) -> SessionOutput | None:
        return current_output.get()

    def write(self, text: str) -> int:
        target = current_output.get()  # not self._target(): a call less per write
        if target is None:
            if self._original is None:  # no stream at all (e.g. pythonw): drop
                return len(text)
            return self._original.write(text)
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        target.write(self._name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._target() is None and self._original is not None:
            self._original.flush()

    def isatty(self) -> bool:
        if self._target() is not None or self._original is None:
            return False
        return self._original.isatty()

    def fileno(self) -> int:
        # In a session there is no file descriptor: input() then falls back to
        # write(prompt) + readline(), which reach the client.
        if self._target() is not None:
            raise io.UnsupportedOperation("fileno")
        return self._original.fileno()

    def close(self) -> None:
        """Never close the process's stream from here (``exit()`` closes ``sys.stdin``)."""

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._original, "errors", "strict")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class RoutedStdin(io.TextIOBase):
    """Stands in for ``sys.stdin``: in a session, a line read asks the client."""

    def __init__(self, original: Any):
        self._original = original

    def _target(self) -> SessionOutput | None:
        return current_output.get()

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        target = self._target()
        if target is None:
            return self._original.readline(size) if self._original is not None else ""
        return target.readline()

    def read(self, size: int | None = -1) -> str:
        target = self._target()
        if target is None:
            return self._original.read(size) if self._original is not None else ""
        # Line by line from the client, up to ``size`` characters or end of file.
        parts: list[str] = []
        have = 0
        while size is None or size < 0 or have < size:
            line = target.readline()
            if not line:
                break
            parts.append(line)
            have += len(line)
        text = "".join(parts)
        return text if size is None or size < 0 else text[:size]

    def readlines(self, hint: int = -1) -> list[str]:  # type: ignore[override]
        return self.read().splitlines(True)

    def __iter__(self) -> Any:
        target = self._target()
        if target is None:
            return iter(self._original)
        return iter(self.readline, "")

    def isatty(self) -> bool:
        if self._target() is not None or self._original is None:
            return False
        return self._original.isatty()

    def fileno(self) -> int:
        if self._target() is not None or self._original is None:
            raise io.UnsupportedOperation("fileno")
        return self._original.fileno()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Never close the process's stdin from a session (``site.Quitter`` tries)."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_install_lock = threading.Lock()


def install_routing() -> None:
    """Put the routing proxies in ``sys.stdout``/``stderr``/``stdin`` (once per process)."""
    with _install_lock:
        if not isinstance(sys.stdout, RoutedStream):
            sys.stdout = RoutedStream(sys.stdout, "stdout")
        if not isinstance(sys.stderr, RoutedStream):
            sys.stderr = RoutedStream(sys.stderr, "stderr")
        if not isinstance(sys.stdin, RoutedStdin):
            sys.stdin = RoutedStdin(sys.stdin)
