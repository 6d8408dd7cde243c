"""Tab completion computed inside the worker, against the session's live namespace.

The client only has text; the objects (``worker``, ``data``, the user's variables)
live in the worker, so completion has to run there. It must never run user code as
a side effect of pressing Tab: a property that fetches data, a ``__getattr__`` that
talks to a database or a ``__getitem__`` that computes something would all run on
the worker, possibly while it is already in trouble. So:

- jedi runs with "unsafe interpreter executions" off: it reads attributes with
  ``getattr_static`` and does not call descriptors, ``__getitem__`` or properties;
- when jedi fails, or is too slow (its first call loads typeshed stubs, and a
  worker under load may be slow), a fallback lists ``dir()`` of the object, which
  it reaches through ``inspect.getattr_static`` and never through ``getattr``
  (``rlcompleter`` calls ``getattr`` on every name, which runs properties).

Only the standard library and jedi are imported: this runs inside workers.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import inspect
import keyword
import re
import threading
import types
from typing import Any

from dask_cli.debug.protocol import MAX_COMPLETIONS, Completion

# How long jedi may take before the ``dir()`` fallback answers instead (seconds).
# jedi's first call in a process loads its stubs (about 0.5 s here); later calls
# take milliseconds.
JEDI_TIMEOUT = 2.0

# jedi runs on one thread of its own, so a pathological completion cannot pile up
# threads: while it is busy, requests get the fallback.
_jedi_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dask-cli-jedi")
_jedi_lock = threading.Lock()
_jedi_pending: concurrent.futures.Future | None = None

# The dotted name that ends the text before the cursor: ``worker.data.ke`` →
# (``worker.data.``, ``ke``). Not after ``.``, ``)``, ``]``, ``}``, a quote or a
# word character: ``f().x`` or ``1.`` are not names the fallback can resolve.
_DOTTED_NAME = re.compile(r"(?<![\w.)\]}'\"])((?:[A-Za-z_]\w*\.)*)(\w*)$")

# Descriptors whose ``__get__`` is harmless to skip over: following them by
# ``getattr_static`` gives the object itself (a function, a class, a module).
_PLAIN = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
    staticmethod,
    classmethod,
)


def complete(
    source: str, cursor: int, namespace: dict[str, Any], timeout: float = JEDI_TIMEOUT
) -> list[Completion]:
    """Completions for ``source`` with the cursor at ``cursor``, against ``namespace``.

    ``Completion.start`` is the (zero or negative) offset from the cursor of the
    text the completion replaces, as prompt_toolkit wants it. Never raises, never
    executes a property, ``__getattr__`` or ``__getitem__`` of a namespace object.
    """
    cursor = max(0, min(cursor, len(source)))
    completions = _jedi_with_timeout(source, cursor, namespace, timeout)
    if completions is None:
        try:
            completions = dir_completions(source[:cursor], namespace)
        except Exception:
            completions = []
    return completions[:MAX_COMPLETIONS]


def _jedi_with_timeout(
    source: str, cursor: int, namespace: dict[str, Any], timeout: float
) -> list[Completion] | None:
    """jedi's completions, or None when jedi failed, is busy or took too long."""
    global _jedi_pending
    with _jedi_lock:
        if _jedi_pending is not None and not _jedi_pending.done():
            return None  # still working on an earlier request: don't queue behind it
        try:
            _jedi_pending = _jedi_executor.submit(jedi_completions, source, cursor, namespace)
        except RuntimeError:  # executor shut down at interpreter exit
            return None
        future = _jedi_pending
    try:
        return future.result(timeout)
    except Exception:  # jedi's own errors, and concurrent.futures.TimeoutError
        return None


def jedi_completions(source: str, cursor: int, namespace: dict[str, Any]) -> list[Completion]:
    """jedi's completions, with descriptor and ``__getitem__`` execution turned off."""
    import jedi

    # The documented switch (jedi.settings): "Controls whether descriptors are
    # evaluated when using an Interpreter". jedi reads it when an Interpreter is
    # made; we set it every time in case other code in the worker turned it on.
    jedi.settings.allow_unsafe_interpreter_executions = False
    line = source.count("\n", 0, cursor) + 1
    column = cursor - (source.rfind("\n", 0, cursor) + 1)
    interpreter = jedi.Interpreter(source, [namespace])
    found = interpreter.complete(line, column, fuzzy=False)
    completions = [
        Completion(
            text=c.name,
            start=-c.get_completion_prefix_length(),
            display=c.name,
            meta=c.type,
        )
        for c in found[: MAX_COMPLETIONS * 4]
    ]
    return _public_first(completions)


def dir_completions(text_before_cursor: str, namespace: dict[str, Any]) -> list[Completion]:
    """Complete the dotted name before the cursor from ``dir()``, without ``getattr``.

    Each step of ``a.b.c`` is read with ``inspect.getattr_static``; if a step is a
    descriptor other than a plain function, class or module (a property, a slot),
    its value is unknown without running it, so there are no completions.
    """
    match = _DOTTED_NAME.search(text_before_cursor)
    if match is None:
        return []
    dotted, prefix = match.group(1), match.group(2)
    if prefix[:1].isdigit():
        return []
    if not dotted:
        names = set(namespace) | set(dir(builtins)) | set(keyword.kwlist)
        meta = "name"
    else:
        head, *rest = dotted.rstrip(".").split(".")
        if head in namespace:
            obj = namespace[head]
        elif hasattr(builtins, head):
            obj = getattr(builtins, head)  # a builtin function/class: no user code
        else:
            return []
        for attribute in rest:
            try:
                obj = inspect.getattr_static(obj, attribute)
            except AttributeError:
                return []
            if _is_opaque_descriptor(obj):
                return []
        try:
            names = set(dir(obj))
        except Exception:
            return []
        meta = "attribute"
    completions = [
        Completion(text=name, start=-len(prefix), display=name, meta=meta)
        for name in sorted(names)
        if isinstance(name, str) and name.startswith(prefix)
    ]
    return _public_first(completions)


def _is_opaque_descriptor(obj: object) -> bool:
    """True for things whose value only ``__get__`` would give (property, slot...)."""
    if isinstance(obj, _PLAIN):
        return False
    return inspect.getattr_static(type(obj), "__get__", None) is not None


def _public_first(completions: list[Completion]) -> list[Completion]:
    """Public names, then ``_private``, then ``__dunder__`` (stable otherwise)."""

    def rank(completion: Completion) -> int:
        name = completion.text.lstrip("'\"")
        if name.startswith("__"):
            return 2
        return 1 if name.startswith("_") else 0

    return sorted(completions, key=rank)
