"""The shell service's event loop, and the gate that puts it before the user's output.

A session's code and the service's loop share one GIL. While a print loop runs,
the service's thread, woken by a new client, a Ctrl-C or a dropped connection,
first waits for the printing thread to give the GIL up, and again after each of
its own system calls. A fresh session after Ctrl-C on a print loop took twice as
long as on an untouched worker, and the loop read the Ctrl-C up to 4 ms late
(``benchmarks/recovery.py``, traced with ftrace).

So the printing thread steps aside for the service: every ``CHECK_EVERY`` writes,
``SessionOutput.write`` asks the :class:`LoopGate` whether the loop has work: it
is handling a read (its selector returned one), or one of the connections it
serves has something to read that the loop's thread has not got to yet (the
writer polls those sockets itself). If so, the writer waits, without the GIL,
until the loop is about to block again, and never longer than ``MAX_HOLD``.
Writes becoming possible and the loop's own wake-ups do not count: they are the
output path itself. Only the thread of a session's plain code ever waits here,
never the worker's or the scheduler's own threads.
"""

from __future__ import annotations

import asyncio
import select
import selectors
from typing import Any

# A writer asks the gate every this many writes (a print() makes two).
CHECK_EVERY = 64
# Longest a writer waits at the gate in one go (a loop busy for longer, say with
# many sessions, lets the code go on between two of its checks).
MAX_HOLD = 0.005


class LoopGate:
    """Whether the service's loop has work, and where writers wait until it has none.

    The loop has work while it handles a read (``loop_working``), and as soon as
    one of the connections it serves has something to read (a message, a
    connection closed or reset) even before its thread could run: each writer polls
    those sockets (:meth:`watch`) itself.

    Called from threads where a Ctrl-C (an exception raised asynchronously) can
    arrive at any bytecode, so the loop never waits for anything here: each writer
    waits on a raw lock of its own, which only it acquires and the loop only
    releases."""

    def __init__(self) -> None:
        self.loop_working = False  # written by the loop only
        self._waiting: set[Any] = set()  # locks of writers waiting for the loop
        # Sockets whose messages the loop reads, counted: a closed connection's number
        # may already be a new connection's when the old one is unwatched.
        self._watched: dict[int, int] = {}
        self.watched_version = 0

    # --- the loop's thread ------------------------------------------------------

    def watch(self, fd: int) -> None:
        self._watched[fd] = self._watched.get(fd, 0) + 1
        self.watched_version += 1

    def unwatch(self, fd: int) -> None:
        left = self._watched.get(fd, 0) - 1
        if left > 0:
            self._watched[fd] = left
        else:
            self._watched.pop(fd, None)
        self.watched_version += 1

    def loop_busy(self) -> None:
        self.loop_working = True

    def loop_idle(self) -> None:
        self.loop_working = False
        if not self._waiting:
            return
        for lock in list(self._waiting):
            release(lock)

    # --- a writer's thread ------------------------------------------------------

    def new_poll(self) -> Any:
        """A poll object for :meth:`busy` over the sockets watched now (one per writer:
        a poll object must not be polled from two threads at once); None where
        ``select.poll`` does not exist (Windows)."""
        if not hasattr(select, "poll"):
            return None
        poll = select.poll()
        for fd in list(self._watched):
            poll.register(fd, select.POLLIN)
        return poll

    def busy(self, poll: Any) -> bool:
        return self.loop_working or (poll is not None and bool(poll.poll(0)))

    def hold(self, lock: Any) -> None:
        """Wait on ``lock`` (the writer's own) until the loop is idle, at most
        ``MAX_HOLD``."""
        lock.acquire(False)  # armed: the next acquire waits for ``loop_idle``
        self._waiting.add(lock)
        try:
            lock.acquire(timeout=MAX_HOLD)
        finally:
            self._waiting.discard(lock)


def release(lock: Any) -> None:
    """Let whoever waits on ``lock`` (a raw lock) go on; a lock that is free already,
    or freed by a racing release, is left as it is."""
    if lock.locked():
        try:
            lock.release()
        except RuntimeError:  # released by the racing one
            pass


_select = selectors.DefaultSelector.select
_READ = selectors.EVENT_READ


class _GatedSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The platform's selector, telling ``gate`` when the loop wakes for a read (a new
    client, a message, a closed connection) and when it is about to block again.

    Writes becoming possible and the loop's own wake-ups (output to send) are not
    counted: that is the output path itself, and pausing the writer for it only
    slowed streaming (``benchmarks/streaming.py``)."""

    def __init__(self, gate: LoopGate) -> None:
        super().__init__()
        self._gate = gate
        self.own: frozenset[int] = frozenset()  # the loop's wake-up pipe

    def select(self, timeout: float | None = None) -> list[Any]:
        gate = self._gate
        if timeout is None or timeout > 0:
            gate.loop_idle()
        ready = _select(self, timeout)
        if ready and not gate.loop_working:
            own = self.own
            for key, events in ready:
                if events & _READ and key.fd not in own:
                    gate.loop_busy()
                    break
        return ready


class ServiceLoop(asyncio.SelectorEventLoop):
    """The event loop of a shell service's thread, with its :class:`LoopGate`."""

    def __init__(self) -> None:
        self.gate = LoopGate()
        selector = _GatedSelector(self.gate)
        super().__init__(selector)
        # What the loop registered for itself while it was made: its wake-up pipe.
        selector.own = frozenset(selector.get_map())


def loop_gate(loop: asyncio.AbstractEventLoop) -> LoopGate | None:
    """The gate of a service loop (None for any other loop: nothing to step aside for)."""
    return loop.gate if isinstance(loop, ServiceLoop) else None
