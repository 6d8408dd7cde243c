"""How snapshot values read in a cell: short sizes, durations, bars.

Plain text (no colour), so the dashboard, ``--once`` tables and a terminal
without colour show the same thing. Bars use distinct characters per part, so
they stay readable with ``NO_COLOR``.
"""

from __future__ import annotations

from dask_cli.top.protocol import PrefixProgress, WorkerRow

MISSING = "-"
NOMINAL_TICK = 0.02  # distributed.admin.tick.interval default: a healthy loop ticks this often

DONE, ERRED, RUNNING, WAITING = "█", "x", "▒", "░"


def size(n: float | None) -> str:
    """``1.2G``, ``340M``, ``12K``, ``512B``: fits a narrow column."""
    if n is None:
        return MISSING
    n = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            if unit == "B":
                return f"{n:.0f}B"
            return f"{n:.1f}{unit}" if abs(n) < 10 else f"{n:.0f}{unit}"
        n /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """``15ms``, ``1.2s``, ``4m``, ``3h``."""
    if seconds is None:
        return MISSING
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0f}%"


def bar(fraction: float, width: int) -> str:
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return DONE * filled + WAITING * (width - filled)


def memory(row: WorkerRow, width: int = 6) -> str:
    """``████░░ 1.2G/4.0G`` (``width`` 0: no bar); without a limit just the size used."""
    if row.memory is None:
        return MISSING if not row.memory_limit else f"{MISSING}/{size(row.memory_limit)}"
    if not row.memory_limit:
        return size(row.memory)
    text = f"{size(row.memory)}/{size(row.memory_limit)}"
    return f"{bar(row.memory / row.memory_limit, width)} {text}" if width else text


def memory_fraction(row: WorkerRow) -> float:
    if not row.memory or not row.memory_limit:
        return 0.0
    return row.memory / row.memory_limit


def tasks(row: WorkerRow) -> str:
    """Processing/ready, e.g. ``12/3``."""
    if row.processing is None:
        return MISSING
    return f"{row.processing}/{row.ready or 0}"


def loop_delay(row: WorkerRow) -> float | None:
    """How much later than due the worker's event loop ticks (0 when healthy)."""
    if row.loop_interval is None:
        return None
    return max(row.loop_interval - NOMINAL_TICK, 0.0)


def status(row: WorkerRow) -> str:
    if row.kept_alive_reason:
        return f"{row.status} ({row.kept_alive_reason})"
    return row.status


def prefix_bar(prefix: PrefixProgress, width: int) -> str:
    """One bar: done (in memory or released), erred, processing, waiting, in that order."""
    total = prefix.total
    if not total or width <= 0:
        return WAITING * max(width, 0)
    parts = [
        (DONE, prefix.memory + prefix.released),
        (ERRED, prefix.erred),
        (RUNNING, prefix.processing),
    ]
    out = ""
    for char, count in parts:
        out += char * round(count / total * width)
    out = out[:width]
    return out + WAITING * (width - len(out))


def prefix_counts(prefix: PrefixProgress) -> str:
    """``120/400`` done of total, plus erred and running when there are some."""
    text = f"{prefix.done}/{prefix.total}"
    if prefix.erred:
        text += f" {prefix.erred} erred"
    if prefix.processing:
        text += f" {prefix.processing} running"
    return text


# Column key → sort key of the worker table: a number or text, None when missing.
SORTS = {
    "name": lambda r: r.name,
    "status": lambda r: (r.status, r.name),
    "cpu": lambda r: r.cpu,
    "memory": lambda r: r.memory,
    "spilled": lambda r: r.spilled,
    "tasks": lambda r: r.processing,
    "delay": loop_delay,
    "seen": lambda r: r.last_seen,
}
# The snapshot column the scheduler sorts by when it caps the table.
SERVER_SORT = {"tasks": "processing", "delay": "loop_interval", "seen": "last_seen"}


def sort_workers(rows: list[WorkerRow], column: str, reverse: bool) -> list[WorkerRow]:
    """Rows in ``column`` order; rows without that value (kept-alive workers that left)
    last either way, by name."""
    key = SORTS.get(column, SORTS["name"])
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    present.sort(key=key, reverse=reverse)
    missing.sort(key=lambda r: r.name)
    return present + missing
