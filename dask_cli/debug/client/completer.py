"""Tab completion in ``dask worker shell``, answered by the worker.

The objects to complete live in the worker, so every completion is a round trip
(``protocol.Complete``), computed there by ``dask_cli.debug.service.completion``.
prompt_toolkit asks for completions on every keystroke when
``complete_while_typing`` is on; one round trip per keystroke would be wasteful
over a slow link and noisy on a busy worker, so this completer:

- waits for a short pause in typing before asking (Tab asks at once);
- remembers the last answer for "the text before the word being typed" and,
  while the user keeps typing that same word, filters it locally;
- does not ask while typing when there is no word and no ``.`` before the cursor.

ptpython runs completers in a thread (``ThreadedCompleter``), so
``get_completions`` is synchronous: it hands ``conn.complete`` to the REPL's
event loop (the one the connection lives on) and waits with a short timeout.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from dask_cli.debug import protocol

# The identifier being typed just before the cursor.
_WORD = re.compile(r"[A-Za-z_]\w*$")


@dataclass
class _Cached:
    context: str  # text before the cursor, without the word being typed
    word: str  # the word being typed when the worker answered
    completions: list[Any]  # protocol.Completion


class RemoteCompleter(Completer):
    """A prompt_toolkit completer that asks the worker, with debouncing and a cache.

    ``complete`` is the connection's ``complete(source, cursor)`` coroutine
    function, ``loop`` the event loop it runs on. ``current_document`` returns the
    buffer's document now, so a request made stale by more typing is dropped
    before it is sent.
    """

    def __init__(
        self,
        complete: Callable[[str, int], Any],
        loop: asyncio.AbstractEventLoop,
        current_document: Callable[[], Document] | None = None,
        timeout: float = 3.0,
        typing_pause: float = 0.15,
    ):
        self._complete = complete
        self._loop = loop
        self._current_document = current_document
        self.timeout = timeout
        self.typing_pause = typing_pause
        self._cache: _Cached | None = None
        self._lock = threading.Lock()
        self.round_trips = 0  # how many times the worker was asked (for tests/debugging)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        before = document.text_before_cursor
        match = _WORD.search(before)
        word = match.group(0) if match else ""
        context = before[: len(before) - len(word)]
        requested = complete_event.completion_requested

        if not requested and not word and not context.endswith("."):
            return  # typing spaces, operators, digits: nothing worth a round trip
        if word[:1].isdigit():
            return

        cached = self._cached_for(context, word)
        if cached is not None:
            yield from cached
            return

        if not requested:
            time.sleep(self.typing_pause)
            if self._is_stale(document):
                return  # more typing happened: the newer request will ask
        completions = self._ask(document.text, document.cursor_position)
        if completions is None:
            return
        with self._lock:
            self._cache = _Cached(context, word, completions)
        yield from (_to_prompt_toolkit(c) for c in completions)

    def _cached_for(self, context: str, word: str) -> list[Completion] | None:
        """The cached answer, filtered for ``word``, if it still applies."""
        with self._lock:
            cached = self._cache
        if cached is None or cached.context != context or not word.startswith(cached.word):
            return None
        if word != cached.word:
            if len(cached.completions) >= protocol.MAX_COMPLETIONS:
                return None  # the answer was cut: names beyond it may match
            if any(_start(c) != -len(cached.word) for c in cached.completions):
                return None  # not all plain name completions: ask again
        return [
            _to_prompt_toolkit(c, start=-len(word))
            for c in cached.completions
            if _text(c).startswith(word)
        ]

    def _is_stale(self, document: Document) -> bool:
        if self._current_document is None:
            return False
        try:
            current = self._current_document()
        except Exception:
            return False
        return current.text_before_cursor != document.text_before_cursor

    def _ask(self, source: str, cursor: int) -> list[Any] | None:
        """One round trip to the worker; None when it failed or took too long."""
        self.round_trips += 1
        try:
            future = asyncio.run_coroutine_threadsafe(self._complete(source, cursor), self._loop)
        except RuntimeError:  # the loop is closed: the REPL is ending
            return None
        try:
            return list(future.result(self.timeout))
        except Exception:
            future.cancel()
            return None

    def forget(self) -> None:
        """Drop the cache: after an eval the namespace may have changed."""
        with self._lock:
            self._cache = None


def _to_prompt_toolkit(c: Any, start: int | None = None) -> Completion:
    return Completion(
        _text(c),
        start_position=_start(c) if start is None else start,
        display=_display(c),
        display_meta=_meta(c),
    )


# The connection returns protocol.Completion objects; accept their dict form too.
def _field(c: Any, name: str) -> Any:
    return c.get(name) if isinstance(c, dict) else getattr(c, name, None)


def _text(c: Any) -> str:
    return str(_field(c, "text"))


def _start(c: Any) -> int:
    return min(0, int(_field(c, "start") or 0))


def _display(c: Any) -> str | None:
    return _field(c, "display")


def _meta(c: Any) -> str | None:
    return _field(c, "meta")
