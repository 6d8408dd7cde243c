"""The helpers a shell session puts in its namespace: ``tasks()``, ``logs()``,
``stacks()``, ``story(key)``.

They read the server's state from the session's thread while the server's event
loop keeps changing it, so they copy containers first (retrying the rare
"changed size during iteration") and return plain text objects whose ``repr`` is
readable in a terminal: no rich here, this runs inside workers.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


class Text(str):
    """A string that shows as itself (not quoted) at the prompt."""

    def __repr__(self) -> str:
        return str(self)


class Table:
    """Rows with named columns; its repr is a plain-text table, and it iterates rows."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]):
        self.columns = list(columns)
        self.rows = [tuple(row) for row in rows]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return self.rows[index]

    def __repr__(self) -> str:
        cells = [self.columns] + [["-" if c is None else str(c) for c in row] for row in self.rows]
        widths = [min(60, max(len(row[i]) for row in cells)) for i in range(len(self.columns))]
        lines = []
        for n, row in enumerate(cells):
            lines.append(
                "  ".join(c[:60].ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
            )
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(f"({len(self.rows)} rows)")
        return "\n".join(lines)


def snapshot(read: Callable[[], T], attempts: int = 5) -> T:
    """``read()``, retried when the event loop mutated a container under us."""
    for n in range(attempts):
        try:
            return read()
        except RuntimeError:
            if n == attempts - 1:
                raise
    raise AssertionError("unreachable")


def is_scheduler(server: Any) -> bool:
    return type(server).__name__ == "Scheduler" or hasattr(server, "transition_log")


def server_kind(server: Any) -> str:
    """``"scheduler"``, ``"nanny"`` or ``"worker"``: the name of ``server`` in a session."""
    if is_scheduler(server):
        return "scheduler"
    if any(cls.__name__ == "Nanny" for cls in type(server).__mro__):
        return "nanny"
    return "worker"


def task_table(server: Any) -> Table:
    """Task states of a worker (key, state, prefix, bytes, where it runs) or a scheduler."""
    if is_scheduler(server):
        tasks = snapshot(lambda: list(server.tasks.values()))
        rows = []
        for ts in tasks:
            where = ts.processing_on.address if ts.processing_on else None
            holders = snapshot(lambda ts=ts: [ws.address for ws in ts.who_has or ()])
            rows.append(
                (
                    ts.key,
                    ts.state,
                    ts.prefix.name,
                    ts.nbytes if ts.nbytes >= 0 else None,
                    where or (",".join(holders) or None),
                )
            )
        return Table(["key", "state", "prefix", "nbytes", "worker"], rows)
    state = server.state
    tasks = snapshot(lambda: list(state.tasks.values()))
    threads = snapshot(lambda: {key: ident for ident, key in server.active_threads.items()})
    rows = []
    for ts in tasks:
        rows.append(
            (ts.key, ts.state, ts.prefix, ts.nbytes, threads.get(ts.key), ts.exception_text or None)
        )
    return Table(["key", "state", "prefix", "nbytes", "thread", "error"], rows)


def log_lines(server: Any, n: int = 20) -> list[str]:
    """The server's last ``n`` log lines, oldest first (distributed keeps them in a deque)."""
    if not hasattr(server, "get_logs"):
        return []
    entries = snapshot(lambda: server.get_logs(n=n))
    return [line for _, line in reversed(entries)]


def stacks_text(server: Any | None = None) -> Text:
    """Every thread's stack; the threads running tasks are marked with their key."""
    active: dict[int, Any] = {}
    if server is not None:
        active = snapshot(lambda: dict(getattr(server, "active_threads", {}) or {}))
    names = {t.ident: t.name for t in threading.enumerate()}
    loop_thread = None
    loop = getattr(getattr(server, "loop", None), "asyncio_loop", None)
    if loop is not None:
        loop_thread = getattr(loop, "_thread_id", None)
    here = threading.get_ident()
    parts = []
    for ident, frame in sys._current_frames().items():
        if ident == here:
            continue
        title = f'Thread {ident} "{names.get(ident, "?")}"'
        if ident == loop_thread:
            title += " (event loop)"
        if ident in active:
            title += f" running task {active[ident]!r}"
        parts.append(title + "\n" + format_stack(frame))
    return Text("\n".join(parts))


# cloudpickle (3.1.3 on) names the code of a function it sends by value so.
BY_VALUE_FILENAME = "<dynamic-code>"


def missing_source(filename: str, namespace: dict[str, Any] | None = None) -> str | None:
    """Why the source of code from ``filename`` cannot be shown here (None: it can)."""
    if linecache.getlines(filename, namespace):
        return None
    if filename == BY_VALUE_FILENAME:
        return (
            "the function was sent by value (defined in a script, a notebook or __main__), "
            "so this process has no file to read"
        )
    if filename.startswith("<") and filename.endswith(">"):
        return f"the code was compiled from a string ({filename}), not read from a file"
    if not os.path.exists(filename):
        return f"{filename} is not on this machine"
    return f"{filename} could not be read"


def format_stack(frame: FrameType) -> str:
    """``traceback.format_stack``, plus, for a frame without source, its qualified name,
    its locals' names and why the source is missing."""
    lines = []
    for summary, lineno in traceback.walk_stack(frame):
        code = summary.f_code
        name = getattr(code, "co_qualname", code.co_name)
        # Another thread's frame has no line number at times (a thread just starting).
        entry = f'  File "{code.co_filename}", line {lineno or "?"}, in {name}\n'
        reason = missing_source(code.co_filename, summary.f_globals)
        if reason is None:
            line = linecache.getline(code.co_filename, lineno).strip() if lineno else ""
            entry += f"    {line}\n" if line else ""
        else:
            # The names from the code object: reading another thread's f_locals is
            # not free of side effects.
            names = ", ".join(code.co_varnames[: code.co_nlocals]) or "none"
            entry += f"    (no source: {reason}; locals: {names})\n"
        lines.append(entry)
    return "".join(reversed(lines))


def story_lines(server: Any, *keys: Any) -> Table:
    """What the server remembers about ``keys`` (distributed's story), one row per event."""
    if is_scheduler(server):
        events = server.story(*keys)
        return Table(["key", "start", "finish", "recommendations", "stimulus", "time"], events)
    events = server.state.story(*keys)
    return Table(["event"], [(" ".join(map(str, e)),) for e in events])


class LogLines(list):
    """Log lines whose repr is the lines themselves."""

    def __repr__(self) -> str:
        return "\n".join(self)


def namespace_helpers(server: Any) -> dict[str, Any]:
    """The helper functions bound to ``server`` for a session's namespace."""

    def tasks() -> Table:
        """Table of task states (iterate it for rows)."""
        return task_table(server)

    def logs(n: int = 20) -> LogLines:
        """The last ``n`` log lines of this process."""
        return LogLines(log_lines(server, n))

    def stacks() -> Text:
        """Every thread's stack, marking the threads that run tasks."""
        return stacks_text(server)

    def story(*keys: Any) -> Table:
        """distributed's story of the given keys on this server."""
        return story_lines(server, *keys)

    if server_kind(server) == "nanny":  # no tasks and no data of its own
        return {"logs": logs, "stacks": stacks}
    helpers: dict[str, Any] = {"tasks": tasks, "logs": logs, "stacks": stacks, "story": story}
    if not is_scheduler(server) and hasattr(server, "data"):
        helpers["data"] = server.data
    return helpers
