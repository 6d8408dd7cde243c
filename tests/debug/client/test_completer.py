"""RemoteCompleter: completions come from the other end, with few round trips.

The "other end" here is the service's own ``complete`` over a namespace, called
through a coroutine on an event loop in another thread, as the REPL's connection
is; the end-to-end path through a worker is covered by test_repl.py.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from dask_cli.debug.client.completer import RemoteCompleter
from dask_cli.debug.service.completion import complete


class Thing:
    def __init__(self):
        self.alpha = 1
        self.alphabet = 2
        self.beta = 3


@pytest.fixture
def loop():
    """An event loop running in a thread: the REPL's loop, from the completer's view."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture
def remote():
    namespace = {"thing": Thing()}
    asked: list[tuple[str, int]] = []

    async def complete_remotely(source: str, cursor: int):
        asked.append((source, cursor))
        return complete(source, cursor, namespace)

    return complete_remotely, asked


def texts(completer, text, requested=True):
    event = CompleteEvent(completion_requested=requested, text_inserted=not requested)
    return [c.text for c in completer.get_completions(Document(text), event)]


def test_tab_asks_the_other_end(loop, remote):
    complete_remotely, asked = remote
    completer = RemoteCompleter(complete_remotely, loop)
    assert texts(completer, "thing.al") == ["alpha", "alphabet"]
    assert asked == [("thing.al", 8)]


def test_typing_the_same_word_filters_locally(loop, remote):
    complete_remotely, asked = remote
    completer = RemoteCompleter(complete_remotely, loop, typing_pause=0)
    assert "beta" in texts(completer, "thing.", requested=False)
    assert texts(completer, "thing.a", requested=False) == ["alpha", "alphabet"]
    assert texts(completer, "thing.alphab", requested=False) == ["alphabet"]
    assert len(asked) == 1
    # Starting positions are those of the word typed now, not of the cached request.
    event = CompleteEvent(completion_requested=True)
    (only,) = completer.get_completions(Document("thing.alphab"), event)
    assert only.start_position == -len("alphab")
    # A new context (or after an eval: forget()) asks again.
    texts(completer, "thing.alpha.", requested=False)
    completer.forget()
    texts(completer, "thing.", requested=False)
    assert len(asked) == 3


def test_no_round_trip_while_typing_operators_or_spaces(loop, remote):
    complete_remotely, asked = remote
    completer = RemoteCompleter(complete_remotely, loop, typing_pause=0)
    for text in ["x = ", "1 + ", "f(", "12"]:
        assert texts(completer, text, requested=False) == []
    assert asked == []


def test_stale_requests_are_dropped(loop, remote):
    complete_remotely, asked = remote
    current = Document("thing.alp")  # the user kept typing during the pause
    completer = RemoteCompleter(
        complete_remotely, loop, current_document=lambda: current, typing_pause=0.01
    )
    assert texts(completer, "thing.a", requested=False) == []
    assert asked == []


def test_a_slow_or_broken_other_end_gives_no_completions(loop):
    async def slow(source, cursor):
        await asyncio.sleep(30)

    async def broken(source, cursor):
        raise ConnectionError("gone")

    assert texts(RemoteCompleter(slow, loop, timeout=0.1), "thing.") == []
    assert texts(RemoteCompleter(broken, loop), "thing.") == []
