"""Builds the ``dask top`` snapshot from a running scheduler's own state.

Runs inside the scheduler, on its event loop, once per second per ``dask top``
attached: it must stay cheap. It reads what the scheduler already keeps (worker
heartbeat metrics, per-prefix task counters, the erred-task history, the log
deque) and never asks the workers anything. Cost is linear in workers and task
prefixes, never in tasks.
"""

from __future__ import annotations

import collections
import heapq
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dask_cli.top import protocol
from dask_cli.top.protocol import Totals

KEPT_ALIVE = "kept-alive"  # as dask_cli.debug.names.KEPT_ALIVE (imported lazily there)
WAITING_STATES = ("waiting", "queued", "no-worker")
FINISHED_STATES = ("memory", "erred")


def _text(value: Any, limit: int = protocol.MAX_TEXT) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ThroughputHistory:
    """Tasks finished per second over the last minute.

    ``sample`` (called about once a second by the feature) records the scheduler's
    cumulative count of transitions into memory or erred; ``per_second`` turns the
    samples into counts per second.
    """

    def __init__(self, seconds: int = protocol.THROUGHPUT_SECONDS):
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=seconds + 1)

    @staticmethod
    def finished(scheduler: Any) -> int:
        total = 0
        for tp in scheduler.task_prefixes.values():
            counts = tp.state_counts
            total += counts.get("memory", 0) + counts.get("erred", 0)
        return total

    def sample(self, scheduler: Any, now: float | None = None) -> None:
        self._samples.append((time.monotonic() if now is None else now, self.finished(scheduler)))

    def per_second(self) -> list[int]:
        samples = list(self._samples)
        out = []
        for (t0, c0), (t1, c1) in zip(samples, samples[1:], strict=False):
            out.append(round((c1 - c0) / max(t1 - t0, 1e-3)))
        return out


_NO_METRICS: Mapping[str, Any] = {}
_STATUS_NAMES: dict[Any, str] = {}  # distributed Status -> its name (enum .name is slow)


def worker_row(ws: Any, record: Mapping[str, Any] | None, now: float) -> list[Any]:
    """``WORKER_COLUMNS`` values of a worker the scheduler knows (``ws``: WorkerState).

    Called for every worker on each refresh: plain dict reads, no allocation beyond
    the row itself."""
    metrics = ws.metrics or _NO_METRICS
    get = metrics.get
    counts = get("task_counts") or _NO_METRICS
    spilled = get("spilled_bytes")
    if record and record.get("status") == KEPT_ALIVE:
        status = KEPT_ALIVE
    else:
        status = _STATUS_NAMES.get(ws.status)
        if status is None:
            status = _STATUS_NAMES[ws.status] = ws.status.name
    seen = now - ws.last_seen
    return [
        str(ws.name),
        ws.address,
        status,
        ws.nthreads,
        get("cpu"),
        get("memory"),
        ws.memory_limit or 0,
        get("managed_bytes"),
        spilled.get("disk", 0) if spilled else 0,
        len(ws.processing),
        counts.get("executing", 0) + counts.get("long-running", 0),
        counts.get("ready", 0) + counts.get("constrained", 0),
        get("event_loop_interval"),
        seen if seen > 0.0 else 0.0,
        record.get("kept_alive_reason") if record else None,
    ]


def departed_row(address: str, record: Mapping[str, Any]) -> list[Any]:
    """A kept-alive worker that left the cluster: no metrics, the scheduler no longer
    hears from it."""
    return [
        str(record.get("name", address)),
        address,
        KEPT_ALIVE,
        int(record.get("nthreads") or 0),
        None,
        None,
        int(record.get("memory_limit") or 0),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        record.get("kept_alive_reason"),
    ]


SORT_KEYS: dict[str, Callable[[list[Any]], Any]] = {
    column: (lambda row, i=i: (row[i] is None, row[i] if row[i] is not None else 0))
    for i, column in enumerate(protocol.WORKER_COLUMNS)
}
SORT_KEYS["name"] = lambda row: str(row[0])


def choose_rows(
    rows: list[list[Any]], limit: int, sort: str | None, reverse: bool
) -> list[list[Any]]:
    """At most ``limit`` rows: the first ones in the client's sort order, so a capped
    table still shows the workers the user sorted to the top."""
    if len(rows) <= limit:
        return rows
    key = SORT_KEYS.get(sort or "name", SORT_KEYS["name"])
    pick = heapq.nlargest if reverse else heapq.nsmallest
    return pick(limit, rows, key=key)


def prefix_rows(task_prefixes: Mapping[str, Any]) -> tuple[dict[str, int], list[list[Any]]]:
    """Tasks by state (cluster-wide) and ``PrefixProgress`` values of the busiest
    prefixes (unfinished ones first), from the scheduler's per-prefix counters."""
    by_state: collections.Counter[str] = collections.Counter()
    rows = []
    for tp in task_prefixes.values():
        states = tp.states
        for state, count in states.items():
            if count:
                by_state[state] += count
        waiting = sum(states.get(s, 0) for s in WAITING_STATES)
        row = [
            tp.name,
            states.get("memory", 0),
            states.get("processing", 0),
            waiting,
            states.get("erred", 0),
            states.get("released", 0),
        ]
        if any(row[1:]):
            rows.append(row)
    rows.sort(key=lambda r: (-(r[2] + r[3]), -sum(r[1:]), r[0]))
    return dict(by_state), rows[: protocol.MAX_PREFIXES]


def erred_rows(erred_tasks: Iterable[Any]) -> list[list[Any]]:
    """The newest erred tasks (distributed's ``Scheduler.erred_tasks``, newest first)."""
    out = []
    for task in erred_tasks:
        if len(out) >= protocol.MAX_ERRED:
            break
        out.append(
            [
                _text(task.key),
                task.timestamp,
                sorted(str(w) for w in task.erred_on),
                _text(task.exception_text),
            ]
        )
    return out


def paused_rows(pauses: Mapping[str, Any], names: Mapping[str, str]) -> list[dict[str, Any]]:
    """``PausedTask`` values, oldest first, from what the breakpoint feature publishes
    (worker address → list of pauses); a worker that left took its pauses with it."""
    out = []
    for address, found in pauses.items():
        if address not in names or not isinstance(found, (list, tuple)):
            continue
        for pause in found:
            if not isinstance(pause, Mapping):
                continue
            out.append(
                {
                    "key": _text(pause.get("key")),
                    "worker": names[address],
                    "address": address,
                    "where": f"{pause.get('file', '?')}:{pause.get('line', 0)}",
                    "function": _text(pause.get("function", "")),
                    "since": pause.get("since"),
                    "attached": pause.get("attached"),
                }
            )
    out.sort(key=lambda p: p["since"] or 0)
    return out[: protocol.MAX_PAUSED]


def log_rows(scheduler: Any, since: float) -> list[list[Any]]:
    """Scheduler log records newer than ``since`` (at most ``MAX_LOG_LINES``, oldest
    first), from the deque distributed keeps for ``get_logs``."""
    handler = getattr(scheduler, "_deque_handler", None)
    if handler is None:
        return []
    out = []
    for record in reversed(handler.deque):
        if record.created <= since or len(out) >= protocol.MAX_LOG_LINES:
            break
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format in someone's log call
            message = str(record.msg)
        name = record.name.removeprefix("distributed.")
        out.append([record.created, record.levelname, name, _text(message)])
    out.reverse()
    return out


def build(
    scheduler: Any,
    records: Mapping[str, Mapping[str, Any]],
    departed: Mapping[str, Mapping[str, Any]],
    throughput: ThroughputHistory,
    pauses: Mapping[str, Any] | None = None,
    limit: int = protocol.DEFAULT_WORKERS,
    sort: str | None = None,
    reverse: bool = False,
    log_since: float = 0.0,
) -> dict[str, Any]:
    """The snapshot message (see :func:`dask_cli.top.protocol.encode`).

    ``records``: address → the record each worker published (shell address,
    kept-alive state); ``departed``: address → record of kept-alive workers that
    left the cluster (the shell plugin's registry); ``pauses``: worker address → the
    tasks paused at ``breakpoint()`` there (the breakpoint feature's metadata).
    """
    from distributed.metrics import time as scheduler_time

    now = scheduler_time()
    totals = Totals()
    rows = []
    threads = memory = memory_limit = spilled = 0
    workers = list(scheduler.workers.items())
    for address, ws in workers:
        row = worker_row(ws, records.get(address) if records else None, now)
        rows.append(row)
        threads += row[3]
        memory += row[5] or 0
        memory_limit += row[6]
        spilled += row[8] or 0
    totals.workers = len(workers)
    totals.threads, totals.memory = threads, memory
    totals.memory_limit, totals.spilled = memory_limit, spilled
    for address, record in departed.items():
        if address not in scheduler.workers:
            rows.append(departed_row(address, record))
    totals.tasks, prefixes = prefix_rows(scheduler.task_prefixes)
    totals.throughput = throughput.per_second()
    limit = max(1, min(int(limit), protocol.MAX_WORKERS))
    return protocol.encode(
        address=scheduler.address,
        time=time.time(),
        totals=totals,
        worker_rows=choose_rows(rows, limit, sort, reverse),
        workers_total=len(rows),
        prefixes=prefixes,
        erred=erred_rows(scheduler.erred_tasks),
        paused=paused_rows(
            pauses, {address: str(ws.name) for address, ws in scheduler.workers.items()}
        )
        if pauses
        else [],
        logs=log_rows(scheduler, float(log_since or 0.0)),
    )
