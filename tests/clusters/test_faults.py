"""Named clusters whose processes die, starts that race, records that are corrupt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil
import pytest

from dask_cli.clusters.processes import marked_processes
from dask_cli.testing import dask_command
from tests.clusters.conftest import dask, listing


def _wait_for(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _cluster_pids(folder) -> list[int]:
    return marked_processes(folder)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("victims", ["holder", "every process"])
def test_killed_cluster_is_dead_and_stop_cleans_up(state_dir, victims):
    dask("cluster", "start", "doomed", "--workers", "1", "--nthreads", "1")
    folder = state_dir / "doomed"
    state = json.loads((folder / "state.json").read_text())
    pids = _cluster_pids(folder)
    assert state["holder"]["pid"] in pids and len(pids) >= 2  # holder, worker process...
    for pid in [state["holder"]["pid"]] if victims == "holder" else pids:
        os.kill(pid, signal.SIGKILL)
    # The worker processes follow their dead holder (nanny processes watch their parent).
    _wait_for(lambda: not [p for p in pids if psutil.pid_exists(p)])

    record = listing("doomed")
    assert record["status"] == "dead", record
    result = dask("worker", "list", "--cluster", "doomed", check=False)
    assert result.returncode == 1
    assert "Cluster 'doomed' is dead" in result.stderr and "Traceback" not in result.stderr

    stopped = dask("cluster", "stop", "doomed")
    assert "was not running; removed its record" in stopped.stdout
    assert not folder.exists()
    assert listing() == []


@pytest.mark.timeout(120)
def test_two_starts_of_one_name_one_wins(state_dir):
    argv = dask_command("cluster", "start", "race", "--workers", "0")
    racers = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(p.wait(90), *p.communicate()) for p in racers]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 1], outcomes
    loser = next(err for code, _, err in outcomes if code == 1)
    assert "A cluster named 'race' already exists" in loser and "Traceback" not in loser
    assert listing("race")["status"] == "running"
    assert "Stopped cluster 'race'." in dask("cluster", "stop", "race").stdout
    assert [p.name for p in state_dir.iterdir()] == []


@pytest.mark.timeout(60)
def test_corrupt_state_is_one_line_and_stop_removes_it(state_dir):
    (state_dir / "broken").mkdir(parents=True)
    (state_dir / "broken" / "state.json").write_text("{not json")
    result = dask("cluster", "info", "broken", check=False)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "corrupt" in errors[0], result.stderr
    assert "Traceback" not in result.stderr

    listed = dask("cluster", "list", "--json")
    assert json.loads(listed.stdout)[0]["status"] == "corrupt"
    assert "The state file of cluster 'broken' is corrupt" in listed.stderr

    shell = dask("worker", "list", "--cluster", "broken", check=False)
    assert shell.returncode == 1 and "corrupt" in shell.stderr

    assert "removed its record" in dask("cluster", "stop", "broken").stdout
    assert not (state_dir / "broken").exists()


@pytest.mark.timeout(60)
def test_unknown_names_and_bad_input(state_dir):
    missing = dask("cluster", "stop", "nope", check=False)
    assert missing.returncode == 1 and "No cluster named 'nope'" in missing.stderr
    shell = dask("worker", "list", "--cluster", "nope", check=False)
    assert shell.returncode == 1 and "No cluster named 'nope'" in shell.stderr
    bad = dask("cluster", "start", "../evil", check=False)
    assert bad.returncode == 2 and "Invalid cluster name" in bad.stderr
    memory = dask("cluster", "start", "m", "--memory-limit", "lots", check=False)
    assert memory.returncode == 2 and "is not a size" in memory.stderr
    wait = dask("cluster", "start", "m", "--timeout", "soon", check=False)
    assert wait.returncode == 2 and "'--timeout': 'soon' is not a duration" in wait.stderr
    for result in (missing, shell, bad, memory, wait):
        assert "Traceback" not in result.stderr
    assert not (state_dir / "m").exists()


def test_an_empty_list_says_so_on_stderr(state_dir):
    empty = dask("cluster", "list")
    assert empty.stdout == ""
    assert "No named clusters; start one with `dask cluster start NAME`." in empty.stderr
    assert dask("cluster", "list", "--json").stdout.strip() == "[]"
