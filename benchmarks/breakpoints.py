"""Task throughput on a worker while one of its tasks is paused at ``breakpoint()``.

Two ``dask worker --nthreads 4 --no-nanny`` of one cluster: ``paused`` holds a task
stopped at ``breakpoint()`` (nobody attached) for the whole measurement, ``free``
holds none (the anchor). Both run the same batches of 96 tasks that each sleep
100 ms (a thread-bound workload: with CPU-bound tasks the GIL, not the thread count,
would set the pace), one worker at a time, interleaved. Target (the issue's): at
least 0.9x. A paused task leaves the thread pool as ``secede()`` does, so the worker
keeps four threads for its other tasks; without that it would have three (0.75x).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Result, Settings
from dask_cli.testing import ProcessCluster

TARGET = 0.9
THREADS = "4"
TASKS = 96
QUICK_TASKS = 48
PAUSED = r"paused at breakpoint\(\)"


def _throughput(client: Any, worker: str, tasks: int) -> float:
    from distributed import wait

    def sleeps(i: int) -> int:  # nested: pickled by value
        import time

        time.sleep(0.1)
        return i

    start = time.perf_counter()
    futures = client.map(sleeps, range(tasks), workers=[worker], pure=False)
    wait(futures)
    elapsed = time.perf_counter() - start
    del futures
    return tasks / elapsed


def paused_thread_throughput(settings: Settings) -> Result:
    """Tasks/s with one of four threads paused at breakpoint() vs none paused."""
    from distributed import Client

    tasks = QUICK_TASKS if settings.quick else TASKS
    name = f"throughput of {tasks} 100 ms tasks, 1 of {THREADS} threads paused vs none"
    with tempfile.TemporaryDirectory(prefix="dask-cli-bench-") as tmp:
        cluster = ProcessCluster(Path(tmp))
        try:
            cluster.start_scheduler()
            for worker in ("paused", "free"):
                cluster.start_worker(worker, "--nthreads", THREADS, "--no-nanny", wait=False)
            for worker in ("paused", "free"):
                cluster.workers[worker].wait_for("Registered to:", 60)
            with Client(cluster.scheduler_address) as client:
                client.wait_for_workers(2)
                addresses = {
                    info["name"]: address
                    for address, info in client.scheduler_info()["workers"].items()
                }

                def stops() -> None:
                    breakpoint()

                held = client.submit(stops, key="benchmark-paused", workers=[addresses["paused"]])
                cluster.workers["paused"].wait_for(PAUSED, 30)
                rates: dict[str, list[float]] = {"paused": [], "free": []}
                for worker in rates:  # warm up both
                    _throughput(client, addresses[worker], 50)
                for _ in range(settings.repeats):
                    for worker in rates:
                        rates[worker].append(_throughput(client, addresses[worker], tasks))
                still_paused = "resumed" not in cluster.workers["paused"].output()
                del held
        finally:
            cluster.close()
    if not still_paused:
        return Result.failed(name, TARGET, "the paused task resumed during the measurement")
    return Result(
        name,
        statistics.median(rates["paused"]),
        statistics.median(rates["free"]),
        TARGET,
        better="higher",
        unit="tasks/s",
    )


BENCHMARKS = [paused_thread_throughput]
