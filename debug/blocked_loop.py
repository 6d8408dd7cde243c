"""A task blocks the worker's event loop.

``block_the_loop`` schedules a blocking ``time.sleep`` on the worker's event loop
(as synchronous code in a ``client.run`` call or a careless async task would). The
worker stops answering the scheduler and every RPC; its heartbeats stop. The
dask-cli shell service runs on its own thread, so it still answers:

    dask worker stack ADDRESS      # the main thread sits in hold_the_event_loop
    dask worker shell ADDRESS -c 'print(stacks())'

The loop unblocks after --seconds (default 60). If that is longer than the
scheduler's worker-ttl, the scheduler removes the worker; with --keepalive it
then stays up, kept alive.

Usage: python debug/blocked_loop.py [--scheduler ADDR] [--worker NAME|ADDR] [--seconds N]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _scenario import run


def hold_the_event_loop(seconds: float) -> None:
    """Runs on the worker's event loop: nothing else there runs meanwhile."""
    import time

    time.sleep(seconds)


def block_the_loop(seconds: float) -> str:
    from distributed import get_worker

    # Start blocking just after this task's result went out, so the caller gets it.
    get_worker().loop.call_later(0.5, hold_the_event_loop, seconds)
    return f"the worker's event loop sleeps for {seconds} s"


def main() -> int:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--seconds", type=float, default=60.0)
    ours, rest = extra.parse_known_args()

    def trigger(client: Any, worker: str) -> dict[str, Any]:
        note = client.submit(block_the_loop, ours.seconds, workers=[worker], pure=False).result()
        return {"worker": worker, "blocked": note}

    def inspect(worker: str, found: dict[str, Any]) -> list[str]:
        return [f"dask worker stack {worker}", f"dask worker shell {worker}"]

    return run(__doc__, trigger, inspect=inspect, argv=rest)


if __name__ == "__main__":
    sys.exit(main())
