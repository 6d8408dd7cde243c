"""The client never hangs on a frozen worker (a paused container, a SIGSTOPped
process): connecting is bounded by ``--timeout``, and a session waiting for a
result pings the service and gives up after ``--timeout`` seconds of silence,
while code that legitimately runs longer than that is kept alive by the pings.

Real ``dask scheduler``/``dask worker`` processes; the frozen worker always gets
SIGCONT back in a ``finally``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from dask_cli.debug.client.connection import ShellConnection
from dask_cli.errors import ConnectionFailed
from dask_cli.testing import process_cluster, run_dask

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One worker of its own: freezing it must not disturb other modules' clusters."""
    with process_cluster(tmp_path_factory.mktemp("liveness"), workers=("icy",)) as running:
        yield running


@pytest.fixture(scope="module")
def record(cluster) -> dict:
    """The worker as ``dask worker list --json`` shows it (pid: the worker process)."""
    result = run_dask("worker", "list", "--json", "--scheduler-file", cluster.scheduler_file)
    assert result.returncode == 0, result.stderr
    (found,) = json.loads(result.stdout)
    return found


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The process stopped as by ``docker pause``, and always resumed."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def shell(cluster, *args: str, timeout: float = 60):
    return run_dask(
        "worker", "shell", *args, "--scheduler-file", cluster.scheduler_file, timeout=timeout
    )


def test_connecting_to_a_frozen_worker_times_out(cluster, record):
    with frozen(record["pid"]):
        started = time.monotonic()
        result = shell(cluster, "icy", "-c", "print(1)", "--timeout", "3", timeout=30)
        took = time.monotonic() - started
    assert result.returncode == 1
    assert f"{record['shell_address']} accepted the connection but sent nothing for 3 s" in (
        result.stderr
    )
    assert "(is the process frozen?)" in result.stderr
    assert "Traceback" not in result.stderr
    assert took < 15, took  # bounded by --timeout (plus start-up), not a hang
    # Resumed, it serves again.
    result = shell(cluster, "icy", "-c", "print('thawed')")
    assert (result.returncode, result.stdout) == (0, "thawed\n"), result.stderr


async def test_session_fails_when_the_worker_freezes_mid_eval(record):
    conn = await ShellConnection.open(record["shell_address"], None, 3)
    started = asyncio.Event()

    def on_output(stream: str, text: str) -> None:
        if "started" in text:
            started.set()

    task = asyncio.ensure_future(
        conn.eval("import time\nprint('started')\ntime.sleep(60)", "exec", on_output=on_output)
    )
    try:
        await asyncio.wait_for(started.wait(), 30)
        with frozen(record["pid"]):
            with pytest.raises(ConnectionFailed, match="stopped answering: timed out after 3 s"):
                # The bound is a hang guard; the client gives up after ~3 s.
                await asyncio.wait_for(task, 20)
    finally:
        task.cancel()
        await conn.close()
    # The worker is fine once resumed (interrupt the abandoned sleep there).
    conn = await ShellConnection.open(record["shell_address"], None, 10)
    try:
        assert (await conn.eval("worker.name")).value == "'icy'"
    finally:
        await conn.close()


def test_code_running_longer_than_timeout_is_not_cut_off(cluster):
    code = "import time\ntime.sleep(8)\nprint('slept')"
    result = shell(cluster, "icy", "-c", code, "--timeout", "3")
    assert (result.returncode, result.stdout, result.stderr) == (0, "slept\n", "")
