"""The ``dask top`` snapshot: one request to the scheduler, one compact answer.

The scheduler-side feature (:mod:`dask_cli.top.feature`) answers
``SNAPSHOT_HANDLER`` with :func:`encode`'s output; the client (:mod:`dask_cli.top.poller`)
turns it back into a :class:`Snapshot` with :func:`decode`. Both ends import this
module and nothing else of each other.

The message is msgpack-serialisable and compact: the worker table travels as one
list of columns and a list of rows (names are not repeated per worker), at most
``limit`` workers (the request's, capped at ``MAX_WORKERS``), the log tail only
since the last line the client has seen, and erred tasks and prefixes are capped.
At 1,000 workers the answer stays around a couple of hundred kilobytes, where
``identity`` is megabytes (distributed issue 9043).

Values of the ``list`` kind may arrive as tuples: read them as sequences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SNAPSHOT_VERSION = 1

# Scheduler handler of the top feature.
SNAPSHOT_HANDLER = "dask_cli_top"

DEFAULT_WORKERS = 1000  # workers in one answer unless the request asks for fewer
MAX_WORKERS = 1000  # hard cap, whatever the request says
MAX_PREFIXES = 40
MAX_ERRED = 20
MAX_PAUSED = 50
MAX_LOG_LINES = 50
MAX_TEXT = 300  # characters of an exception or log message
THROUGHPUT_SECONDS = 60


@dataclass
class WorkerRow:
    """One line of the worker table. Metrics are None for a kept-alive worker that
    left the cluster (the scheduler no longer hears from it)."""

    name: str
    address: str
    status: str  # running, paused, closing..., or "kept-alive"
    nthreads: int = 0
    cpu: float | None = None  # percent of one core
    memory: int | None = None  # process RSS, bytes
    memory_limit: int = 0  # 0 = no limit
    managed: int | None = None  # bytes of task results held in memory
    spilled: int | None = None  # bytes spilled to disk
    processing: int | None = None  # tasks the scheduler assigned to it
    executing: int | None = None
    ready: int | None = None  # tasks waiting for a thread on the worker
    loop_interval: float | None = None  # observed event-loop tick interval, seconds
    last_seen: float | None = None  # seconds since its last heartbeat
    kept_alive_reason: str | None = None


WORKER_COLUMNS = tuple(f.name for f in fields(WorkerRow))


@dataclass
class PrefixProgress:
    """Task counts of one task prefix (``inc``, ``sum-aggregate``...), as the web
    dashboard's progress page shows them."""

    name: str
    memory: int = 0
    processing: int = 0
    waiting: int = 0  # waiting, queued or no-worker
    erred: int = 0
    released: int = 0

    @property
    def total(self) -> int:
        return self.memory + self.processing + self.waiting + self.erred + self.released

    @property
    def done(self) -> int:
        return self.memory + self.erred + self.released


@dataclass
class ErredTask:
    key: str
    time: float
    workers: list[str]
    exception: str


@dataclass
class PausedTask:
    """A task stopped at ``breakpoint()``, as the breakpoint feature publishes it;
    ``dask worker debug KEY`` attaches to it."""

    key: str
    worker: str  # the worker's name
    address: str  # the worker's address
    where: str = ""  # file:line
    function: str = ""
    since: float | None = None  # time.time()
    attached: str | None = None  # who debugs it now


@dataclass
class LogLine:
    time: float
    level: str
    logger: str
    message: str


@dataclass
class Totals:
    workers: int = 0  # in the cluster (kept-alive workers that left not counted)
    threads: int = 0
    memory: int = 0
    memory_limit: int = 0
    spilled: int = 0
    tasks: dict[str, int] = field(default_factory=dict)  # state -> count, non-zero only
    # Tasks finished (memory or erred) in each of the last seconds, oldest first.
    throughput: list[int] = field(default_factory=list)

    @property
    def tasks_per_second(self) -> float:
        """Average over the window of ``throughput``."""
        return sum(self.throughput) / len(self.throughput) if self.throughput else 0.0


@dataclass
class Snapshot:
    """Everything one refresh of ``dask top`` shows."""

    address: str  # the scheduler's
    time: float  # the scheduler's clock, time.time()
    totals: Totals
    workers: list[WorkerRow]
    workers_total: int  # rows the scheduler has; more than len(workers) when capped
    prefixes: list[PrefixProgress]
    erred: list[ErredTask]
    paused: list[PausedTask]
    logs: list[LogLine]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``dask top --once --json``: one dict per worker, prefix, task."""
        data = asdict(self)
        data["totals"]["tasks_per_second"] = self.totals.tasks_per_second
        return data


def _rows(items: Sequence[Any], cls: type) -> list[Any]:
    names = [f.name for f in fields(cls)]
    out = []
    for item in items or ():
        if isinstance(item, Mapping):
            out.append(cls(**{k: item[k] for k in names if k in item}))
        else:
            out.append(cls(*list(item)[: len(names)]))
    return out


def encode(
    address: str,
    time: float,
    totals: Totals,
    worker_rows: Sequence[Sequence[Any]],
    workers_total: int,
    prefixes: Sequence[Sequence[Any]],
    erred: Sequence[Sequence[Any]],
    paused: Sequence[Mapping[str, Any]],
    logs: Sequence[Sequence[Any]],
) -> dict[str, Any]:
    """The answer to one snapshot request. ``worker_rows`` are value lists in
    ``WORKER_COLUMNS`` order; prefixes, erred tasks and log lines are value lists in
    their dataclass's field order."""
    return {
        "version": SNAPSHOT_VERSION,
        "address": address,
        "time": time,
        "totals": asdict(totals),
        "columns": list(WORKER_COLUMNS),
        "workers": [list(row) for row in worker_rows],
        "workers_total": workers_total,
        "prefixes": [list(p) for p in prefixes],
        "erred": [list(e) for e in erred],
        "paused": [dict(p) for p in paused],
        "logs": [list(line) for line in logs],
    }


class SnapshotError(ValueError):
    """An answer that is not a snapshot (an old or foreign scheduler)."""


def decode(msg: Any) -> Snapshot:
    """A :class:`Snapshot` from ``encode``'s message; unknown columns are ignored, so
    a newer scheduler can add some."""
    if not isinstance(msg, Mapping) or msg.get("version") != SNAPSHOT_VERSION:
        raise SnapshotError(f"not a dask top snapshot: {str(msg)[:200]}")
    try:
        columns = list(msg["columns"])
        known = [(i, c) for i, c in enumerate(columns) if c in WORKER_COLUMNS]
        workers = [WorkerRow(**{c: row[i] for i, c in known}) for row in msg["workers"]]
        totals_msg = dict(msg["totals"])
        totals = Totals(
            **{f.name: totals_msg[f.name] for f in fields(Totals) if f.name in totals_msg}
        )
        totals.tasks = dict(totals.tasks)
        totals.throughput = list(totals.throughput)
        return Snapshot(
            address=str(msg["address"]),
            time=float(msg["time"]),
            totals=totals,
            workers=workers,
            workers_total=int(msg["workers_total"]),
            prefixes=_rows(msg["prefixes"], PrefixProgress),
            erred=[
                ErredTask(str(k), float(t), list(w), str(x))
                for k, t, w, x in (list(e) for e in msg["erred"])
            ],
            paused=_rows(msg.get("paused") or (), PausedTask),
            logs=_rows(msg["logs"], LogLine),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"malformed dask top snapshot: {exc!r}") from None
