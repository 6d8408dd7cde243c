"""Two tasks deadlock on two locks.

``transfer_a_to_b`` takes lock A then lock B; ``transfer_b_to_a`` takes B then A.
Both run at once on the same worker (it needs 2 threads), meet at a barrier after
their first lock, and then wait forever for each other. The futures never finish;
the worker itself looks healthy to the scheduler. Find out why:

    dask worker stack ADDRESS      # two task threads blocked in lock.acquire
    dask worker shell ADDRESS -c 'print(tasks())'

Usage: python debug/deadlock.py [--scheduler ADDR] [--worker NAME|ADDR]
"""

from __future__ import annotations

import sys
from typing import Any

from _scenario import run


def _shared() -> tuple[Any, Any, Any]:
    """Two locks and a barrier shared by the tasks of one worker process."""
    import threading

    from distributed import get_worker

    worker = get_worker()
    return worker.__dict__.setdefault(
        "_dask_cli_deadlock_scenario",
        (threading.Lock(), threading.Lock(), threading.Barrier(2)),
    )


def transfer_a_to_b(amount: int) -> str:
    lock_a, lock_b, barrier = _shared()
    with lock_a:
        barrier.wait()
        with lock_b:  # never acquired: transfer_b_to_a holds it
            return f"moved {amount} from A to B"


def transfer_b_to_a(amount: int) -> str:
    lock_a, lock_b, barrier = _shared()
    with lock_b:
        barrier.wait()
        with lock_a:
            return f"moved {amount} from B to A"


def trigger(client: Any, worker: str) -> dict[str, Any]:
    threads = client.scheduler_info(n_workers=-1)["workers"][worker]["nthreads"]
    if threads < 2:
        raise SystemExit(f"deadlock needs a worker with 2 threads; {worker} has {threads}")
    a = client.submit(transfer_a_to_b, 10, key="transfer-a-to-b", workers=[worker])
    b = client.submit(transfer_b_to_a, 20, key="transfer-b-to-a", workers=[worker])
    # Keep the futures (and so the tasks) alive after this client leaves.
    client.publish_dataset(a, b, name="deadlock-scenario", override=True)

    def both_running() -> bool:
        processing = client.processing(workers=[worker]).get(worker, [])
        return {"transfer-a-to-b", "transfer-b-to-a"} <= set(processing)

    from _scenario import wait_until

    wait_until(both_running, what="both tasks to run")
    return {"worker": worker, "deadlocked tasks": "transfer-a-to-b, transfer-b-to-a"}


def inspect(worker: str, found: dict[str, Any]) -> list[str]:
    return [f"dask worker stack {worker}", f"dask worker shell {worker} -c 'print(tasks())'"]


if __name__ == "__main__":
    sys.exit(run(__doc__, trigger, worker_args=("--nthreads", "2"), inspect=inspect))
