"""``dask top --once``: one snapshot as tables (or JSON), for scripts and for
terminals without full-screen support. Rows are built here; ``output`` prints."""

from __future__ import annotations

import datetime
from typing import Any

from dask_cli.top import cells
from dask_cli.top.protocol import Snapshot

WORKER_COLUMNS = ("name", "address", "status", "threads", "cpu", "memory", "spilled")
WORKER_COLUMNS += ("proc/ready", "loop delay", "last seen")
LOG_LINES = 10


def clock(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def summary(snapshot: Snapshot) -> str:
    """``tcp://...: 3 workers, 6 threads, memory 1.2G/12G, 40 tasks/s``."""
    t = snapshot.totals
    memory = cells.size(t.memory) + (f"/{cells.size(t.memory_limit)}" if t.memory_limit else "")
    kept = sum(1 for w in snapshot.workers if w.status == "kept-alive")
    text = f"{snapshot.address}: {t.workers} workers"
    if kept:
        text += f" ({kept} kept alive)"
    text += f", {t.threads} threads, memory {memory}"
    if t.spilled:
        text += f", spilled {cells.size(t.spilled)}"
    return text + f", {t.tasks_per_second:.1f} tasks/s (last minute)"


def task_states(snapshot: Snapshot) -> str:
    states = snapshot.totals.tasks
    if not states:
        return "no tasks"
    return ", ".join(f"{count} {state}" for state, count in sorted(states.items()))


def worker_rows(snapshot: Snapshot) -> list[tuple[Any, ...]]:
    return [
        (
            w.name,
            w.address,
            w.status,
            w.nthreads or None,
            cells.percent(w.cpu),
            cells.memory(w, width=0),
            cells.size(w.spilled),
            cells.tasks(w),
            cells.duration(cells.loop_delay(w)),
            cells.duration(w.last_seen),
        )
        for w in cells.sort_workers(snapshot.workers, "name", False)
    ]


def kept_alive_rows(snapshot: Snapshot) -> list[tuple[Any, ...]]:
    return [(w.name, w.kept_alive_reason) for w in snapshot.workers if w.kept_alive_reason]


def prefix_rows(snapshot: Snapshot) -> list[tuple[Any, ...]]:
    return [(p.name, cells.prefix_bar(p, 20), cells.prefix_counts(p)) for p in snapshot.prefixes]


def erred_rows(snapshot: Snapshot) -> list[tuple[Any, ...]]:
    return [(clock(e.time), e.key, ", ".join(e.workers), e.exception) for e in snapshot.erred]


def paused_rows(snapshot: Snapshot) -> list[tuple[Any, ...]]:
    return [(p.key, p.worker, p.where, p.function, p.attached) for p in snapshot.paused]


def log_rows(snapshot: Snapshot) -> list[tuple[Any, ...]]:
    return [
        (clock(line.time), line.level, line.logger, line.message)
        for line in snapshot.logs[-LOG_LINES:]
    ]


def print_snapshot(snapshot: Snapshot) -> None:
    """Every section of the dashboard, one rich table each (empty sections left out)."""
    from dask_cli import output

    output.print_table(("cluster", "tasks"), [(summary(snapshot), task_states(snapshot))])
    shown = len(snapshot.workers)
    title = (
        f"{shown} workers"
        if shown == snapshot.workers_total
        else (f"{shown} of {snapshot.workers_total} workers")
    )
    output.print_table(WORKER_COLUMNS, worker_rows(snapshot), title=title)
    sections = [
        (("worker", "kept alive because"), kept_alive_rows(snapshot), "kept-alive workers"),
        (("prefix", "progress", "done/total"), prefix_rows(snapshot), "task progress"),
        (("time", "key", "worker", "exception"), erred_rows(snapshot), "erred tasks"),
        (
            ("key", "worker", "where", "function", "attached"),
            paused_rows(snapshot),
            "paused at breakpoint() (dask worker debug KEY)",
        ),
        (("time", "level", "logger", "message"), log_rows(snapshot), "scheduler log"),
    ]
    for columns, rows, section_title in sections:
        if rows:
            output.print_table(columns, rows, title=section_title)
