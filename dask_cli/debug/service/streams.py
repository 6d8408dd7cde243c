"""Per-session stdout/stderr/stdin without swapping the process's streams for others.

A worker's task output and its log handlers must keep going where they went
before a shell session started. So instead of replacing ``sys.stdout`` per
session (as manhole does), we install once a proxy that forwards to the original
stream unless the current context (a contextvar, set by the session's thread or
its coroutine) belongs to a session. Logging handlers keep a reference to the
original stream object and are never affected.
"""

from __future__ import annotations

import contextvars
import io
import sys
import threading
from collections.abc import Callable
from typing import Any

# Flush output when this much is buffered, without waiting for the timer.
FLUSH_BYTES = 64 * 1024
# A writer blocks while this much output waits to be sent (back-pressure).
MAX_PENDING_BYTES = 1024 * 1024


class SessionOutput:
    """The output of one eval: a thread-safe, bounded buffer drained by the service.

    ``write`` is called from the thread running the code; ``take`` from the
    service's event loop. ``on_data(urgent)`` tells the service there is
    something to send (``urgent`` when the buffer passed ``FLUSH_BYTES``).
    ``read_line`` is how ``input()`` in the session reaches the client.
    """

    def __init__(
        self,
        on_data: Callable[[bool], None],
        read_line: Callable[[str], str | None],
    ):
        self._on_data = on_data
        self._read_line = read_line
        self._cond = threading.Condition()
        self._chunks: list[tuple[str, str]] = []
        self._pending = 0
        self.closed = False

    def write(self, stream: str, text: str) -> None:
        if not text:
            return
        with self._cond:
            while self._pending > MAX_PENDING_BYTES and not self.closed:
                self._cond.wait(0.5)
            if self.closed:
                return
            # Append, never concatenate here (re-copying the buffer on every write
            # is quadratic), and wake the service only when the buffer becomes
            # non-empty or first passes FLUSH_BYTES, not on every write after.
            before = self._pending
            self._chunks.append((stream, text))
            self._pending += len(text)
            urgent = self._pending >= FLUSH_BYTES
            wake = before == 0 or (urgent and before < FLUSH_BYTES)
        if wake:
            self._on_data(urgent)

    def take(self) -> list[tuple[str, str]]:
        """Everything buffered so far, as (stream, text) chunks (consecutive writes to
        one stream joined); wakes blocked writers."""
        with self._cond:
            chunks, self._chunks = self._chunks, []
            self._pending = 0
            self._cond.notify_all()
        joined: list[tuple[str, list[str]]] = []
        for stream, text in chunks:
            if joined and joined[-1][0] == stream:
                joined[-1][1].append(text)
            else:
                joined.append((stream, [text]))
        return [(stream, "".join(parts)) for stream, parts in joined]

    def readline(self, prompt: str = "") -> str:
        if self.closed:
            return ""
        text = self._read_line(prompt)
        if text is None:
            return ""
        return text if text.endswith("\n") else text + "\n"

    def close(self) -> None:
        """No more output accepted (an abandoned eval's later output is dropped)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


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
        target = self._target()
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
        return target.readline()

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
