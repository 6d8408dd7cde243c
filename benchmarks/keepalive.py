"""Memory of a kept-alive worker: resident set after a long idle time in the kept-alive
state, against right after it entered that state.

A ``dask worker --keepalive --no-nanny`` loses its scheduler (SIGKILL), enters the
kept-alive state (its log line says so), and then sits idle: no heartbeats, no
tasks, only the shell service. Its RSS one second after the log line is the anchor;
the RSS after 10 minutes (``--quick``: 8 s) is ours, sampled every second, and the
peak over the window is reported too. Target (ours, not the design's): at most
1.1x, i.e. nothing accumulates while a worker waits for someone to look at it.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path

from benchmarks import Result, Settings
from dask_cli.testing import ProcessCluster

TARGET = 1.1
KEPT = r"is kept alive for post-mortem"
IDLE = 600.0
QUICK_IDLE = 8.0


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def kept_alive_rss(settings: Settings) -> list[Result]:
    """RSS after the idle window vs on entering the kept-alive state (one worker)."""
    idle = QUICK_IDLE if settings.quick else IDLE
    label = f"{idle / 60:g} min" if idle >= 60 else f"{idle:g} s"
    names = (
        f"kept-alive worker RSS after {label} idle vs on entering",
        f"kept-alive worker peak RSS over {label} vs on entering",
    )
    with tempfile.TemporaryDirectory(prefix="dask-cli-bench-") as tmp:
        cluster = ProcessCluster(Path(tmp))
        try:
            cluster.start_scheduler()
            worker = cluster.start_worker("kept", "--keepalive", "--no-nanny")
            assert cluster.scheduler is not None
            cluster.scheduler.send_signal(signal.SIGKILL)
            try:
                worker.wait_for(KEPT, 60)
            except AssertionError as exc:
                reason = f"not available: the worker did not enter the kept-alive state ({exc})"
                return [Result.failed(name, TARGET, reason.splitlines()[0]) for name in names]
            time.sleep(1)
            entering = _rss(worker.pid)
            peak = entering
            deadline = time.monotonic() + idle
            while time.monotonic() < deadline:
                time.sleep(1)
                if not worker.alive():
                    reason = "not available: the kept-alive worker exited during the window"
                    return [Result.failed(name, TARGET, reason) for name in names]
                peak = max(peak, _rss(worker.pid))
            after = _rss(worker.pid)
        finally:
            cluster.close()
    mib = 2**20
    return [
        Result(names[0], after / mib, entering / mib, TARGET, unit="MB"),
        Result(names[1], max(peak, after) / mib, entering / mib, TARGET, unit="MB"),
    ]


BENCHMARKS = [kept_alive_rss]
