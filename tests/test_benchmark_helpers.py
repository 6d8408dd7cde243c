"""The helpers the benchmarks share (``benchmarks/_common.py``, ``benchmarks/_host.py``).

No figures are asserted here (the machine is noisy): only that the helpers measure
what they say and leave no process behind.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # ``benchmarks/`` is a top-level directory of the checkout, not an installed package.
    monkeypatch.syspath_prepend(str(ROOT))


def test_median_times_async_interleaves_and_divides_by_inner() -> None:
    from benchmarks._common import median_times_async

    calls: list[str] = []

    def recorder(name: str):
        async def call() -> None:
            calls.append(name)
            await asyncio.sleep(0)

        return call

    medians = asyncio.run(
        median_times_async({"a": recorder("a"), "b": recorder("b")}, repeats=5, inner=3)
    )
    assert set(medians) == {"a", "b"}
    assert all(0 < value < 1 for value in medians.values())
    # warm-up (one round of 3 each), then 5 rounds of 3 each, alternating a and b
    assert calls == (["a"] * 3 + ["b"] * 3) * 6


def test_peak_rss_sees_memory_allocated_inside_the_block() -> None:
    from benchmarks._common import PeakRSS

    size = 64 * 2**20
    with PeakRSS(os.getpid(), interval=0.001) as rss:
        # Written, so every page is resident (a zeroed bytearray is calloc'd: its pages
        # may never be touched), and held long enough for the 1 ms sampler to see it.
        block = b"\x01" * size
        time.sleep(0.1)
        del block
    assert rss.growth >= size // 2
    assert rss.peak >= rss.baseline + rss.growth


@pytest.mark.timeout(90)
def test_in_process_host_serves_shells_and_leaves_nothing_behind() -> None:
    from benchmarks._common import InProcessHost
    from dask_cli.debug.client.resolve import list_workers
    from dask_cli.debug.client.settings import ClientSettings

    with InProcessHost(3) as host:
        pid = host.pid
        records = asyncio.run(list_workers(ClientSettings(scheduler=host.address)))
        assert sorted(r.name for r in records) == ["w1", "w2", "w3"]
        assert all(r.shell_address for r in records)
    assert host.proc.returncode is not None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_host_module_refuses_a_missing_worker_count() -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._host"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers" in done.stderr
