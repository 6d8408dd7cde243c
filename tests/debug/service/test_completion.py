"""Completion inside the worker: jedi against the live namespace, never running code."""

from __future__ import annotations

import threading

import pytest

from dask_cli.debug.protocol import Completion
from dask_cli.debug.service import completion
from dask_cli.debug.service.completion import (
    MAX_COMPLETIONS,
    complete,
    dir_completions,
    jedi_completions,
)


class Touchy:
    """An object whose property, ``__getattr__`` and ``__getitem__`` leave a trace."""

    def __init__(self, calls: list[str]):
        self.calls = calls
        self.plain = 42

    @property
    def expensive(self) -> str:
        self.calls.append("property")
        return "computed"

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        self.calls.append(f"getattr {name}")
        return "dynamic"

    def __getitem__(self, key):
        self.calls.append(f"getitem {key}")
        return "item"

    def method(self) -> int:
        return 1


def texts(completions: list[Completion]) -> list[str]:
    return [c.text for c in completions]


@pytest.fixture
def namespace():
    calls: list[str] = []
    return {"obj": Touchy(calls), "calls": calls, "answer": 42}


def test_attributes_of_a_live_object(namespace):
    found = complete("obj.", 4, namespace)
    assert {"plain", "expensive", "method", "calls"} <= set(texts(found))
    assert all(c.start == 0 for c in found)


def test_start_is_the_negative_length_of_the_typed_prefix(namespace):
    found = complete("obj.me", 6, namespace)
    assert Completion(text="method", start=-2, display="method", meta="function") in found
    assert "plain" not in texts(found)


@pytest.mark.parametrize(
    "source",
    [
        "obj.",
        "obj.exp",
        "obj.expensive.",
        "obj.expensive.up",
        "obj[0].",
        "obj.missing.",
        "obj.calls.",
    ],
)
def test_no_property_getattr_or_getitem_runs(namespace, source):
    complete(source, len(source), namespace)
    dir_completions(source, namespace)
    assert namespace["calls"] == []


def test_cursor_in_the_middle_of_multiline_source(namespace):
    source = "def f(x):\n    return obj.pl + x\n"
    cursor = source.index("obj.pl") + len("obj.pl")
    found = complete(source, cursor, namespace)
    assert texts(found)[:1] == ["plain"]
    assert found[0].start == -2


def test_global_names_and_builtins(namespace):
    assert "answer" in texts(complete("ans", 3, namespace))
    assert "print" in texts(complete("pri", 3, namespace))


def test_private_names_come_last(namespace):
    found = texts(complete("obj.", 4, namespace))
    first_private = next(i for i, name in enumerate(found) if name.startswith("_"))
    assert all(name.startswith("_") for name in found[first_private:])


def test_at_most_max_completions():
    namespace = {f"name{i}": i for i in range(MAX_COMPLETIONS * 2)}
    assert len(complete("name", 4, namespace)) == MAX_COMPLETIONS


def test_out_of_range_cursor_and_garbage_do_not_raise(namespace):
    assert isinstance(complete("obj.", 999, namespace), list)
    assert isinstance(complete("obj.", -5, namespace), list)
    assert isinstance(complete(")))(((", 3, namespace), list)
    assert isinstance(complete("'unterminated", 5, namespace), list)


def test_fallback_when_jedi_is_too_slow(namespace, monkeypatch):
    release = threading.Event()

    def slow_jedi(source, cursor, ns):
        release.wait(10)
        return []

    monkeypatch.setattr(completion, "jedi_completions", slow_jedi)
    try:
        found = complete("obj.me", 6, namespace, timeout=0.05)
        assert texts(found) == ["method"]
        assert found[0].start == -2
        # While jedi is still busy, the next request does not queue behind it.
        assert texts(complete("ans", 3, namespace, timeout=5)) == ["answer"]
    finally:
        release.set()
    assert namespace["calls"] == []


def test_fallback_when_jedi_raises(namespace, monkeypatch):
    def broken_jedi(source, cursor, ns):
        raise RuntimeError("jedi broke")

    monkeypatch.setattr(completion, "jedi_completions", broken_jedi)
    assert "plain" in texts(complete("obj.pl", 6, namespace))


def test_fallback_follows_modules_and_stops_at_properties(namespace):
    import os

    namespace["os"] = os
    assert "join" in texts(dir_completions("os.path.jo", namespace))
    assert dir_completions("obj.expensive.", namespace) == []
    assert dir_completions("f().", namespace) == []
    assert dir_completions("1.", namespace) == []
    assert namespace["calls"] == []


def test_jedi_directly_matches_the_contract(namespace):
    found = jedi_completions("obj.pla", 7, namespace)
    assert found[0] == Completion(text="plain", start=-3, display="plain", meta="instance")
