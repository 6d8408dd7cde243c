"""The service loop's gate: a session's printing thread steps aside while the loop has
a message to read or is handling one."""

from __future__ import annotations

import _thread
import asyncio
import socket
import threading

import pytest

from dask_cli.debug.service import loop as service_loop
from dask_cli.debug.service.loop import CHECK_EVERY, LoopGate, ServiceLoop, loop_gate
from dask_cli.debug.service.streams import SessionOutput

pytestmark = pytest.mark.timeout(30)


def _wait_until(condition, timeout: float = 5.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.001)):
        if condition():
            return
        done.wait(0.001)
    raise AssertionError("condition not met")


def test_a_writer_waits_while_the_loop_works_and_goes_on_when_it_is_idle(monkeypatch):
    monkeypatch.setattr(service_loop, "MAX_HOLD", 30.0)  # only loop_idle can end the wait
    gate = LoopGate()
    gate.loop_busy()
    lock = _thread.allocate_lock()
    writer = threading.Thread(target=gate.hold, args=(lock,))
    writer.start()
    _wait_until(lambda: lock in gate._waiting and lock.locked())
    assert writer.is_alive()
    gate.loop_idle()
    writer.join(10)
    assert not writer.is_alive()
    assert not gate.loop_working and not gate._waiting


def test_a_writer_never_waits_longer_than_max_hold(monkeypatch):
    monkeypatch.setattr(service_loop, "MAX_HOLD", 0.01)
    gate = LoopGate()
    gate.loop_busy()  # and never idle again: a loop stuck in a long callback
    lock = _thread.allocate_lock()
    for _ in range(3):
        gate.hold(lock)
    assert not gate._waiting


def test_writers_see_a_message_before_the_loop_reads_it():
    gate = LoopGate()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        gate.watch(ours.fileno())
        poll = gate.new_poll()
        assert not gate.busy(poll)
        theirs.sendall(b"interrupt")
        assert gate.busy(poll)
        ours.recv(100)
        assert not gate.busy(poll)
        theirs.close()  # a dropped connection is work for the loop too
        assert gate.busy(poll)
        version = gate.watched_version
        gate.unwatch(ours.fileno())
        assert gate.watched_version != version
        assert not gate.busy(gate.new_poll())


def test_a_reused_socket_number_stays_watched():
    """A closed connection is unwatched after its number may already be a new one's."""
    gate = LoopGate()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        gate.watch(ours.fileno())  # the old connection
        gate.watch(ours.fileno())  # the new one, same number
        gate.unwatch(ours.fileno())  # the old one leaves
        theirs.sendall(b"hello")
        assert gate.busy(gate.new_poll())
        gate.unwatch(ours.fileno())
        assert not gate.busy(gate.new_poll())


def test_the_loop_counts_reads_of_its_connections_not_its_own_wakeups():
    loop = ServiceLoop()
    gate = loop_gate(loop)
    assert gate is not None
    seen: dict[str, bool] = {}
    ours, theirs = socket.socketpair()

    async def scenario() -> None:
        woken = asyncio.Event()

        def from_thread() -> None:  # a call_soon_threadsafe: the loop's own pipe
            seen["own wake-up"] = gate.loop_working
            woken.set()

        threading.Thread(target=loop.call_soon_threadsafe, args=(from_thread,)).start()
        await woken.wait()
        message = asyncio.Event()

        def readable() -> None:
            seen["message"] = gate.loop_working
            ours.recv(100)
            message.set()

        loop.add_reader(ours.fileno(), readable)
        theirs.sendall(b"ping")
        await message.wait()
        loop.remove_reader(ours.fileno())
        await asyncio.sleep(0.01)  # a turn that blocks: the loop is idle again

    try:
        with ours, theirs:
            loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert seen == {"own wake-up": False, "message": True}
    assert not gate.loop_working


class _CountingGate(LoopGate):
    def __init__(self) -> None:
        super().__init__()
        self.holds: list[int] = []

    def hold(self, lock) -> None:  # type: ignore[no-untyped-def]
        self.holds.append(threading.get_ident())


def test_only_the_eval_thread_steps_aside_and_only_every_few_writes():
    gate = _CountingGate()
    gate.loop_busy()
    output = SessionOutput(lambda urgent: None, lambda prompt: None, gate=gate)
    output.waiting_thread = threading.get_ident()
    for _ in range(CHECK_EVERY * 4):
        output.write("stdout", "x\n")
    assert gate.holds == [threading.get_ident()] * 4

    def await_code_on_another_thread() -> None:
        for _ in range(CHECK_EVERY * 4):
            output.write("stdout", "y\n")

    other = threading.Thread(target=await_code_on_another_thread)
    other.start()
    other.join()
    assert len(gate.holds) == 4  # never the worker's own threads

    gate.loop_idle()
    for _ in range(CHECK_EVERY * 4):
        output.write("stdout", "z\n")
    assert len(gate.holds) == 4  # an idle loop with nothing to read: no waiting
