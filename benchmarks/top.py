"""What ``dask top`` costs the scheduler, and its snapshot against ``identity``.

A ``dask scheduler`` process (our plugins and the top feature installed, as users
run it) and N in-process workers in another process (:mod:`benchmarks._host`), so
the scheduler's CPU is its own.

- scheduler CPU with ``dask top``'s poller attached (one snapshot a second, the
  dashboard's :class:`~dask_cli.top.poller.SnapshotPoller`) vs nobody polling, 200
  workers with their shell services. The window (60 s a side by default,
  ``DASK_CLI_BENCH_TOP_WINDOW`` seconds to change it; ``--quick``: 6 s, 50 workers)
  is cut into slices alternating with/without, so drifting machine noise hits both.
  Target (design): at most 1.05x.
- one snapshot request's round trip and answer size vs ``identity(n_workers=-1)``
  (what a dashboard that polls ``identity`` pays, distributed issue 9043), at 200
  workers with shell services and at 1,000 without (1,000 shell services do not fit
  this machine; the scheduler then has no worker records, only the metrics).
  Targets (ours): time at most 0.5x, size at most 0.25x.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Result, Settings
from benchmarks._common import InProcessHost, cpu_seconds, cpu_share, median_times_async
from dask_cli.testing import ProcessCluster

CPU_TARGET = 1.05
TIME_TARGET = 0.5
SIZE_TARGET = 0.25
SLICE = 10.0  # seconds per with/without slice of the CPU window
QUICK_SLICE = 2.0


def window(settings: Settings) -> float:
    """Seconds of CPU measurement per side."""
    if "DASK_CLI_BENCH_TOP_WINDOW" in os.environ:
        return float(os.environ["DASK_CLI_BENCH_TOP_WINDOW"])
    return 6.0 if settings.quick else 60.0


async def _scheduler_cpu(address: str, pid: int, seconds: float, slice_: float) -> dict:
    """CPU seconds of the scheduler over ``seconds`` with the poller and as many without."""
    from dask_cli.debug.client.settings import ClientSettings
    from dask_cli.top.poller import SnapshotPoller

    poller = SnapshotPoller(ClientSettings(scheduler=address))
    await poller.fetch()  # connected, warm

    async def poll_at_1hz() -> None:
        while True:
            started = time.monotonic()
            await poller.fetch()
            await asyncio.sleep(max(1.0 - (time.monotonic() - started), 0))

    used = {"ours": 0.0, "anchor": 0.0}
    slices = max(1, round(seconds / slice_))
    try:
        for i in range(2 * slices):
            side = ("ours", "anchor", "anchor", "ours")[i % 4]
            poll = asyncio.ensure_future(poll_at_1hz()) if side == "ours" else None
            before = cpu_seconds(pid)
            await asyncio.sleep(seconds / slices)
            used[side] += cpu_seconds(pid) - before
            if poll is not None:
                poll.cancel()
                await asyncio.gather(poll, return_exceptions=True)
    finally:
        await poller.close()
    return used


async def _request_costs(address: str, n: int, repeats: int) -> dict[str, float]:
    """Median round trip of a snapshot and of ``identity``, and the size of each answer."""
    import msgpack
    from distributed.core import rpc

    from dask_cli.debug.client.settings import ClientSettings
    from dask_cli.top import protocol
    from dask_cli.top.poller import SnapshotPoller

    poller = SnapshotPoller(ClientSettings(scheduler=address))
    scheduler = rpc(address)
    answers: dict[str, Any] = {}

    async def snapshot() -> None:
        found = await poller.fetch()
        if found.workers_total != n:
            raise RuntimeError(f"snapshot lists {found.workers_total} of {n} workers")

    async def identity() -> None:
        answers["identity"] = await scheduler.identity(n_workers=-1)

    try:
        medians = await median_times_async({"snapshot": snapshot, "identity": identity}, repeats)
        async with rpc(address) as raw:
            answers["snapshot"] = await getattr(raw, protocol.SNAPSHOT_HANDLER)(
                limit=protocol.MAX_WORKERS
            )
    finally:
        await poller.close()
        await scheduler.close_rpc()
    for name, answer in answers.items():
        medians[f"{name} bytes"] = len(msgpack.packb(answer, default=str))
    return medians


def _cluster(directory: Path, workers: int, shell: bool) -> tuple[ProcessCluster, InProcessHost]:
    cluster = ProcessCluster(directory)
    cluster.start_scheduler(timeout=60)
    try:
        host = InProcessHost(
            workers, shell=shell, timeout=60 + workers, scheduler=cluster.scheduler_address
        )
    except BaseException:
        cluster.close()
        raise
    return cluster, host


def _wait_registered(address: str, n: int, timeout: float = 120) -> None:
    from dask_cli.debug.client.settings import ClientSettings
    from dask_cli.top.poller import fetch_once

    deadline = time.monotonic() + timeout
    while asyncio.run(fetch_once(ClientSettings(scheduler=address))).totals.workers < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {n} workers registered")
        time.sleep(0.5)


def _request_results(n: int, costs: dict[str, float], shell: bool) -> list[Result]:
    what = f"{n} workers" + ("" if shell else ", no shell")
    return [
        Result(
            f"dask top snapshot round trip, {what} vs identity",
            costs["snapshot"],
            costs["identity"],
            TIME_TARGET,
        ),
        Result(
            f"dask top snapshot size, {what} vs identity",
            costs["snapshot bytes"] / 1000,
            costs["identity bytes"] / 1000,
            SIZE_TARGET,
            unit="kB",
        ),
    ]


def scheduler_cost(settings: Settings) -> list[Result]:
    """Scheduler CPU with the poller at 1 Hz, and the snapshot at 200 workers."""
    n = 50 if settings.quick else 200
    seconds = window(settings)
    with tempfile.TemporaryDirectory(prefix="dask-cli-bench-top-") as tmp:
        cluster, host = _cluster(Path(tmp), n, shell=True)
        try:
            _wait_registered(cluster.scheduler_address, n)
            time.sleep(2)  # let registration settle
            assert cluster.scheduler is not None
            cpu = asyncio.run(
                _scheduler_cpu(
                    cluster.scheduler_address,
                    cluster.scheduler.pid,
                    seconds,
                    QUICK_SLICE if settings.quick else SLICE,
                )
            )
            costs = asyncio.run(_request_costs(cluster.scheduler_address, n, settings.repeats))
        finally:
            host.close()
            cluster.close()
    return [
        cpu_share(
            f"scheduler CPU over {seconds:g} s, dask top at 1 Hz vs none, {n} workers",
            cpu,
            seconds,
            CPU_TARGET,
        ),
        *_request_results(n, costs, shell=True),
    ]


def thousand_workers(settings: Settings) -> list[Result]:
    """The snapshot at 1,000 workers (``--quick``: 200), workers without shell services."""
    n = 200 if settings.quick else 1000
    with tempfile.TemporaryDirectory(prefix="dask-cli-bench-top-") as tmp:
        cluster, host = _cluster(Path(tmp), n, shell=False)
        try:
            _wait_registered(cluster.scheduler_address, n, timeout=300)
            costs = asyncio.run(_request_costs(cluster.scheduler_address, n, settings.repeats))
        finally:
            host.close()
            cluster.close()
    return _request_results(n, costs, shell=False)


BENCHMARKS = [scheduler_cost, thousand_workers]
