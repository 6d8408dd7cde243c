"""Per-session output routing and its bounded buffer."""

from __future__ import annotations

import io
import threading
import time

from dask_cli.debug.service.loop import CHECK_EVERY
from dask_cli.debug.service.streams import (
    FLUSH_BYTES,
    FLUSH_WRITES,
    MAX_PENDING_BYTES,
    MAX_PENDING_WRITES,
    TAKE_MAX_WRITES,
    RoutedStdin,
    RoutedStream,
    SessionOutput,
    current_output,
)


def test_routed_stream_forwards_outside_sessions():
    original = io.StringIO()
    stream = RoutedStream(original, "stdout")
    output = SessionOutput(lambda urgent: None, lambda prompt: None)
    stream.write("task output\n")

    def in_session():
        current_output.set(output)
        stream.write("session output\n")

    thread = threading.Thread(target=in_session)
    thread.start()
    thread.join()
    stream.write("more task output\n")
    assert original.getvalue() == "task output\nmore task output\n"
    assert output.take() == [("stdout", "session output\n")]


def test_stdin_in_session_asks_the_reader():
    output = SessionOutput(lambda urgent: None, lambda prompt: "typed")
    stdin = RoutedStdin(io.StringIO("local\n"))
    assert stdin.readline() == "local\n"
    seen = []

    def in_session():
        current_output.set(output)
        seen.append(stdin.readline())

    thread = threading.Thread(target=in_session)
    thread.start()
    thread.join()
    assert seen == ["typed\n"]


def test_writer_blocks_until_output_is_taken():
    wakeups = []
    output = SessionOutput(wakeups.append, lambda prompt: None)
    chunk = "x" * (256 * 1024)
    done = threading.Event()

    def writer():
        for _ in range(12):  # 3 MiB: more than the buffer may hold
            output.write("stdout", chunk)
        done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert not done.wait(0.3)  # blocked by back-pressure
    total = 0
    while not done.is_set() or total < 12 * len(chunk):
        taken = output.take()
        assert sum(len(t) for _, t in taken) <= MAX_PENDING_BYTES + len(chunk)
        total += sum(len(t) for _, t in taken)
        done.wait(0.01)
    assert total == 12 * len(chunk)
    assert True in wakeups  # the service was told to flush early


def test_many_short_writes_wait_too_and_one_take_gets_them_all():
    """A print loop of short lines waits once MAX_PENDING_WRITES writes wait, far below
    MAX_PENDING_BYTES: a Ctrl-C frees at most that many strings on the service's loop,
    and a take gets them all in one go."""
    output = SessionOutput(lambda urgent: None, lambda prompt: None)
    written = []

    def writer():
        output.waiting_thread = threading.get_ident()  # as an eval's thread
        for i in range(3 * MAX_PENDING_WRITES):
            output.write("stdout", "x")
            written.append(i)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(written) <= MAX_PENDING_WRITES and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    waiting = len(written)
    assert MAX_PENDING_WRITES <= waiting <= MAX_PENDING_WRITES + 64  # checked every 64
    assert output.pending == waiting < MAX_PENDING_BYTES
    assert output.take() == [("stdout", "x" * waiting)]
    assert not output.backlog
    total = waiting
    while thread.is_alive() and time.monotonic() < deadline:  # each take lets it go on
        total += sum(len(text) for _, text in output.take())
        time.sleep(0.01)
    total += sum(len(text) for _, text in output.take())
    assert total == len(written) == 3 * MAX_PENDING_WRITES


def test_many_short_writes_have_the_loop_send_at_once():
    """Short lines reach FLUSH_WRITES long before FLUSH_BYTES: the loop is told to send
    then, not after its flush interval (a print loop of numbers ran 8x slower)."""
    wakeups = []
    output = SessionOutput(wakeups.append, lambda prompt: None)
    output.waiting_thread = threading.get_ident()  # as an eval's thread
    for _ in range(FLUSH_WRITES + CHECK_EVERY):
        output.write("stdout", "x")
    assert output.pending < FLUSH_BYTES
    assert wakeups == [False, True]


def test_closed_output_drops_writes_and_unblocks():
    output = SessionOutput(lambda urgent: None, lambda prompt: None)
    output.close()
    output.write("stdout", "late")
    assert output.take() == []
    assert output.readline() == ""


def test_a_take_is_bounded_and_keeps_the_streams_in_order():
    """One take joins at most TAKE_MAX_WRITES writes (the loop reads a Ctrl-C between
    two); what is left is the backlog, taken next, stdout and stderr interleaved."""
    output = SessionOutput(lambda urgent: None, lambda prompt: None)
    for _ in range(TAKE_MAX_WRITES + 10):
        output.write("stdout", "o")
    output.write("stderr", "e")
    output.write("stdout", "o2")
    assert output.take() == [("stdout", "o" * TAKE_MAX_WRITES)]
    assert output.backlog
    assert output.take() == [("stdout", "o" * 10), ("stderr", "e"), ("stdout", "o2")]
    assert not output.backlog
    assert output.pending == 0
    assert output.take() == []


def test_discard_drops_what_waits_counts_it_and_keeps_later_output():
    output = SessionOutput(lambda urgent: None, lambda prompt: None)
    output.write("stdout", "x" * 1000)
    output.write("stderr", "y" * 24)
    assert output.discard() == 1024  # the result says so (Result.dropped)
    output.write("stdout", "after\n")
    assert output.take() == [("stdout", "after\n")]
    assert output.discard() == 0
    assert output.take() == []


def test_discard_lets_a_writer_waiting_for_room_go_on():
    output = SessionOutput(lambda urgent: None, lambda prompt: None)
    done = threading.Event()

    def writer():
        for _ in range(8):  # 2 MiB: blocks on back-pressure
            output.write("stdout", "x" * (256 * 1024))
        done.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert not done.wait(0.3)
    while not done.is_set():
        output.discard()
        done.wait(0.05)
    thread.join(5)
    assert not thread.is_alive()
