"""What several benchmark modules share: clusters on 127.0.0.1, async timing, RSS sampling.

Clusters come from :mod:`dask_cli.testing` (real ``dask`` processes) or from
:mod:`benchmarks._host` (many in-process workers in one subprocess, for 32 or 200
workers on a 2-core machine). Every process started here is stopped by the
benchmark that started it, or at interpreter exit for the shared cluster.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from benchmarks import Result
from dask_cli.testing import LOCALHOST, DaskProcess, ProcessCluster

_shared: ProcessCluster | None = None


def shared_cluster() -> ProcessCluster:
    """A ``dask scheduler`` and one ``dask worker`` named ``w1`` (shell on, one thread),
    started once per run and shared by the modules that only need one worker; stopped
    at exit. Saves a cluster start-up (seconds on a busy machine) per module."""
    global _shared
    if _shared is None:
        directory = Path(tempfile.mkdtemp(prefix="dask-cli-bench-"))
        cluster = ProcessCluster(directory)
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        atexit.register(cluster.close)  # runs first: atexit is last-in, first-out
        try:
            cluster.start_scheduler()
            cluster.start_worker("w1")
        except BaseException:
            cluster.close()
            raise
        _shared = cluster
    return _shared


def worker_pid(cluster: ProcessCluster, name: str) -> int:
    """The pid of the worker process (the nanny's child when there is a nanny)."""
    import psutil

    parent = psutil.Process(cluster.workers[name].pid)
    children = parent.children(recursive=True)
    return children[-1].pid if children else parent.pid


class InProcessHost:
    """``python -m benchmarks._host``: a scheduler and ``workers`` in-process workers in
    one subprocess, for benchmarks that need tens or hundreds of workers."""

    def __init__(
        self,
        workers: int,
        shell: bool = True,
        timeout: float = 120,
        scheduler: str | None = None,
    ):
        argv = [sys.executable, "-m", "benchmarks._host", "--workers", str(workers)]
        if not shell:
            argv.append("--no-shell")
        if scheduler is not None:
            argv += ["--scheduler", scheduler]  # workers only, joining that scheduler
        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=root,
            text=True,
            start_new_session=True,
        )
        self.address = ""
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line or line.startswith("scheduler "):
                break
        if not line.startswith("scheduler "):
            self.close()
            raise RuntimeError(f"in-process host with {workers} workers did not start")
        self.address = line.split()[1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        """Close stdin (the host's signal to stop), then make sure the group is gone."""
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def __enter__(self) -> InProcessHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def started(argv: list[str], ready: str, timeout: float = 60) -> Iterator[DaskProcess]:
    """A subprocess that is stopped (with its process group) when the block ends."""
    process = DaskProcess(argv)
    try:
        process.wait_for(ready, timeout)
        yield process
    finally:
        process.close()


def distributed_cluster(directory: Path, workers: int = 2, *extra: str) -> ProcessCluster:
    """A scheduler and workers started with distributed's own CLI modules
    (``python -m distributed.cli.dask_scheduler`` / ``dask_worker``): no dask-cli preload.
    Same options as :class:`ProcessCluster` uses for ours."""
    directory.mkdir(parents=True, exist_ok=True)
    cluster = ProcessCluster(directory)
    scheduler_file = cluster.scheduler_file
    cluster.scheduler = DaskProcess(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", LOCALHOST]
        + ["--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file],
        cwd=directory,
    )
    match = cluster.scheduler.wait_for(r"Scheduler at:\s+(\S+)", 60)
    cluster.scheduler_address = match[1]
    for i in range(workers):
        name = f"w{i + 1}"
        cluster.workers[name] = DaskProcess(
            [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address]
            + ["--host", LOCALHOST, "--name", name, "--nthreads", "1", "--no-dashboard"]
            + ["--memory-limit", "0", *extra],
            cwd=directory,
        )
    for process in cluster.workers.values():
        process.wait_for(r"Registered to:", 60)
    return cluster


def run_process(argv: list[str], timeout: float = 120) -> Callable[[], None]:
    """A function that runs ``argv`` to completion and fails loudly on a non-zero exit."""

    def run() -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"{argv[:4]} exited {done.returncode}: {lines[-1:] or ''}")

    return run


async def median_times_async(
    functions: dict[str, Callable[[], Awaitable[object]]],
    repeats: int,
    inner: int = 1,
    warmup: int = 1,
) -> dict[str, float]:
    """Median seconds per call of each coroutine function.

    One sample is ``inner`` calls in a row (divided by ``inner``); samples of the
    functions are interleaved so machine noise hits all alike.
    """
    for _ in range(warmup):
        for function in functions.values():
            for _ in range(inner):
                await function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(inner):
                await function()
            samples[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time that process ``pid`` has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def cpu_share(name: str, used: dict[str, float], seconds: float, target: float) -> Result:
    """The row for CPU seconds ``used["ours"]`` against ``used["anchor"]``, each over a
    window of ``seconds``, as a percentage of one core (what ``top`` would show)."""
    return Result(
        name,
        100 * used["ours"] / seconds,
        100 * used["anchor"] / seconds,
        target,
        unit="% CPU",
    )


def run_async(coroutine: Awaitable[object]) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


class PeakRSS:
    """Samples the resident set size of ``pid`` on a thread while the block runs.

    ``baseline`` is the RSS when the block starts, ``peak`` the highest sample;
    ``growth`` their difference, in bytes.
    """

    def __init__(self, pid: int, interval: float = 0.01):
        import psutil

        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.baseline = 0
        self.peak = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakRSS:
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(Exception):
            self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline
