"""The failure scenarios of ``debug/`` do what their docstrings say.

``internal_error`` and ``scheduler_dies`` are exercised by test_keepalive.py and
``task_raises`` by test_postmortem.py; here: the blocked loop, the deadlock, the
memory growth the nanny acts on, and one scenario end to end on its own cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dask_cli.testing import process_cluster, run_dask

DEBUG = Path(__file__).resolve().parents[2] / "debug"


def scenario(name: str, *args: str, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, str(DEBUG / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Inspect it with:" in done.stdout
    return done.stdout


@pytest.mark.timeout(90)
def test_blocked_loop_and_deadlock_are_visible_in_the_stacks(tmp_path: Path) -> None:
    with process_cluster(tmp_path, workers=()) as cluster:
        cluster.start_worker("blocked", wait=False)
        cluster.start_worker("locked", "--nthreads", "2", wait=False)
        for process in cluster.workers.values():
            process.wait_for(r"Registered to:", 60)
        address = cluster.scheduler_address
        scenario("blocked_loop", "--scheduler", address, "--worker", "blocked", "--seconds", "10")
        scenario("deadlock", "--scheduler", address, "--worker", "locked")

        # The blocked worker's event loop sits in the scenario's function; the shell
        # service (its own thread) still answers.
        blocked = run_dask("worker", "stack", "blocked", "--scheduler", address)
        assert blocked.returncode == 0, blocked.stderr
        main_thread = blocked.stdout.split('"MainThread"', 1)[1].split("\nThread ", 1)[0]
        assert "hold_the_event_loop" in main_thread, blocked.stdout

        # The scenario's functions come by value (a script): their source may not be on
        # the worker, their names and the lines they wait at always are.
        locked = run_dask("worker", "stack", "locked", "--scheduler", address)
        assert locked.returncode == 0, locked.stderr
        source = (DEBUG / "deadlock.py").read_text().splitlines()
        for function, waits_at in (
            ("transfer_a_to_b", "with lock_b:"),
            ("transfer_b_to_a", "with lock_a:"),
        ):
            start = source.index(f"def {function}(amount: int) -> str:")
            line = next(n for n in range(start, len(source)) if waits_at in source[n]) + 1
            assert f"line {line}, in {function}" in locked.stdout, locked.stdout

        # Neither can close cleanly (a sleeping loop, deadlocked threads): don't wait.
        for process in cluster.workers.values():
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.timeout(120)
def test_memory_growth_leaves_a_crash_record_on_the_nanny(tmp_path: Path) -> None:
    with process_cluster(tmp_path, workers=()) as cluster:
        worker = cluster.start_worker("grower", "--keepalive", "--memory-limit", "400MB")
        scenario("memory_growth", "--scheduler", cluster.scheduler_address, "--worker", "grower")
        line = worker.wait_for(
            r"Worker 'grower' process (?P<how>.*?): kept the nanny for post-mortem.*"
            r"dask worker shell (?P<shell>\S+)",
            60,
        )
        assert "SIGTERM" in line["how"] and "memory limit" in line["how"]
        assert worker.alive()  # the nanny stays, and did not restart the worker
        assert "Restarting worker" not in worker.output()

        crash = run_dask("worker", "shell", line["shell"], "-c", "print(crash)")
        assert crash.returncode == 0, crash.stderr
        assert "killed by SIGTERM" in crash.stdout
        assert "in grow" in crash.stdout  # faulthandler's stack of the growing task
        assert "log lines" in crash.stdout

        # The worker's name leads to the nanny's session too.
        by_name = run_dask(
            "worker",
            "shell",
            "grower",
            "--scheduler",
            cluster.scheduler_address,
            "-c",
            "print(crash.describe())",
        )
        assert by_name.returncode == 0, by_name.stderr
        assert "SIGTERM" in by_name.stdout

        released = run_dask("worker", "release", "grower", "--scheduler", cluster.scheduler_address)
        assert released.returncode == 0, released.stderr
        assert worker.wait(30) == 0


@pytest.mark.timeout(90)
def test_a_scenario_runs_on_its_own_local_cluster() -> None:
    out = scenario("task_raises", "--no-wait", "--no-nanny")
    assert "ZeroDivisionError" in out
    assert "dask worker shell tcp://127.0.0.1:" in out
