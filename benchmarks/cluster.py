"""Named clusters: how long ``dask cluster start`` and ``dask cluster list`` take.

- ``dask cluster start NAME --workers 4`` until the command returns (it returns once
  every worker has registered, with its shell service up) vs a fresh Python process
  making ``LocalCluster(n_workers=4)`` until it prints its address (the constructor
  returns once every worker has registered). Same threads, memory, host. Target: at
  most 1.2x.
- ``dask cluster list`` with 5 named clusters (each asked at once through its holder)
  vs one ``dask worker list`` process against one scheduler. Target: at most 1.5x.

Both run in a state directory of their own, never the user's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import MIN_REPEATS, Result, Settings, median_times
from benchmarks._common import run_process
from benchmarks.startup import dask_cli_argv

START_TARGET = 1.2
LIST_TARGET = 1.5
WORKERS = 4
LISTED_CLUSTERS = 5

ANCHOR = """\
from distributed import LocalCluster

cluster = LocalCluster(
    n_workers={workers}, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
)
print("ready", cluster.scheduler_address, flush=True)
input()  # stay up until killed: closing is not part of the measurement
"""


def _state_dir() -> None:
    os.environ["DASK_CLI__CLUSTER__STATE_DIR"] = tempfile.mkdtemp(prefix="dask-cli-bench-state-")


def _dask(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*dask_cli_argv(), *args], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"dask {' '.join(args)} exited {done.returncode}: {done.stderr[-300:]}")
    return done


def start_until_workers_answer(settings: Settings) -> Result:
    """`dask cluster start NAME --workers 4` vs a fresh process making LocalCluster(4).

    Each side is timed to "every worker registered"; stopping is not timed. Starts
    are interleaved, one warm-up each, fewer repeats than usual (each start is
    seconds of work for 5 processes).
    """
    _state_dir()
    repeats = MIN_REPEATS if settings.quick else max(MIN_REPEATS, settings.repeats // 3)
    ours: list[float] = []
    anchor: list[float] = []
    for i in range(repeats + 1):
        ours.append(_start_ours(f"bench{i}"))
        anchor.append(_start_anchor())
    return Result(
        f"cluster start --workers {WORKERS} (vs LocalCluster process)",
        statistics.median(ours[1:]),
        statistics.median(anchor[1:]),
        START_TARGET,
    )


def _start_ours(name: str) -> float:
    began = time.perf_counter()
    try:
        _dask("cluster", "start", name, "--workers", str(WORKERS), "--nthreads", "1")
        return time.perf_counter() - began
    finally:
        _dask("cluster", "stop", name, "--force")


def _start_anchor() -> float:
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", ANCHOR.format(workers=WORKERS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        elapsed = time.perf_counter() - began
        if not line.startswith("ready"):
            raise RuntimeError(f"LocalCluster did not start: {line!r}")
        return elapsed
    finally:
        process.kill()
        process.wait(60)


def list_five_clusters(settings: Settings) -> Result:
    """`dask cluster list` with 5 named clusters vs one `dask worker list` process."""
    _state_dir()
    names = [f"listed{i}" for i in range(LISTED_CLUSTERS)]
    try:
        for name in names:
            _dask("cluster", "start", name, "--workers", "1", "--nthreads", "1")
        info = json.loads(_dask("cluster", "info", names[0], "--json").stdout)
        medians = median_times(
            {
                "ours": run_process([*dask_cli_argv(), "cluster", "list"]),
                "anchor": run_process(
                    [*dask_cli_argv(), "worker", "list", "--scheduler", info["scheduler_address"]]
                ),
            },
            settings.repeats,
        )
    finally:
        for name in names:
            subprocess.run(
                [*dask_cli_argv(), "cluster", "stop", name, "--force"],
                capture_output=True,
                timeout=120,
            )
    return Result(
        f"cluster list, {LISTED_CLUSTERS} clusters (vs worker list)",
        medians["ours"],
        medians["anchor"],
        LIST_TARGET,
    )


BENCHMARKS = [start_until_workers_answer, list_five_clusters]
