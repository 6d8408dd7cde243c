"""The scheduler dies under a worker that holds data.

The worker computes ``results-0`` (kept in its memory), then the scheduler process
exits abruptly (``os._exit`` inside it: as a crash or an OOM kill would). Without
``--keepalive`` the worker shuts down (reason worker-handle-scheduler-connection-broken)
and its data is gone. With it, the worker logs one line saying it is kept alive and
which ``dask worker shell ADDRESS`` to run: the address works without the scheduler.

    dask worker shell ADDRESS -c 'print(sorted(data))'
    dask worker shell ADDRESS -c 'print(data["results-0"])'
    dask worker release ADDRESS              # or Ctrl-C / SIGTERM on the worker

Usage: python debug/scheduler_dies.py [--scheduler ADDR]   (that scheduler WILL exit)
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

from _scenario import run

KEPT_ALIVE_LINE = r"Worker .* is kept alive for post-mortem.*"

DATA_KEY = "results-0"


def make_results() -> dict[str, Any]:
    return {"rows": 1000, "mean": 4.2, "source": "scheduler_dies scenario"}


def kill_scheduler() -> None:
    import os
    import threading

    # Exit after the reply went out, so the client sees the call succeed.
    threading.Timer(0.2, os._exit, args=(1,)).start()


def trigger(client: Any, worker: str) -> dict[str, Any]:
    results = client.submit(make_results, key=DATA_KEY, workers=[worker])
    results.result()
    client.run_on_scheduler(kill_scheduler)
    return {"worker": worker, "held key": DATA_KEY, "scheduler": "exits now"}


def inspect(worker: str, found: dict[str, Any]) -> list[str]:
    code = shlex.quote(f'print(data["{DATA_KEY}"])')
    return [f"dask worker shell {worker}", f"dask worker shell {worker} -c {code}"]


if __name__ == "__main__":
    sys.exit(run(__doc__, trigger, inspect=inspect, log_line=KEPT_ALIVE_LINE))
