"""``dask job`` end to end: real scheduler and worker processes on 127.0.0.1.

One cluster serves the module (jobs do not hold worker threads, so they do not
get in each other's way); the tests that kill a worker start their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from dask_cli.testing import (
    DaskProcess,
    dask_command,
    dask_terminal,
    probe_imports,
    process_cluster,
    run_dask,
)

pytestmark = pytest.mark.timeout(180)  # generous: 2 shared cores; hangs still fail


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with process_cluster(tmp_path_factory.mktemp("jobs"), workers=("w1", "w2")) as running:
        yield running


def script(directory: Path, text: str, name: str = "job.py") -> str:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def job(cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``dask job ARGS``, finding the scheduler through DASK_SCHEDULER_ADDRESS."""
    env = {"DASK_SCHEDULER_ADDRESS": cluster.scheduler_address}
    return run_dask("job", *args, timeout=timeout, env=env)


def settings(cluster):
    from dask_cli.debug.client.settings import ClientSettings

    return ClientSettings(scheduler=cluster.scheduler_address)


def record(cluster, key: str) -> dict:
    """The job's record, asked in-process (the commands have tests of their own)."""
    from dask_cli.jobs import client as jobs

    return asyncio.run(jobs.status(settings(cluster), key)).to_dict()


def submit(cluster, path: str, **options) -> str:
    """Submit in-process; the key."""
    from dask_cli.jobs import client as jobs

    request = jobs.SubmitRequest(script=path, **options)
    return asyncio.run(jobs.submit(settings(cluster), request)).record.key


def wait_for_state(cluster, key: str, states: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = record(cluster, key)
        if found["state"] in states:
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def wait_for_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    return path.read_text()


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie of ours would still answer; the script's parent is the worker.
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("args", [("job", "--help"), ("job", "submit", "--help")])
def test_help_does_not_import_distributed(args):
    probe = probe_imports(*args)
    assert probe.exit_code == 0 and "Usage: dask job" in probe.output
    assert probe.heavy_modules == []


@pytest.mark.parametrize("code", [0, 3])
def test_wait_streams_output_and_exits_with_the_scripts_status(cluster, tmp_path, code):
    path = script(
        tmp_path,
        f"""
        import os, sys
        print("out", sys.argv[1:], os.environ["DASK_SCHEDULER_ADDRESS"])
        print("err", os.environ["GREETING"], file=sys.stderr)
        sys.exit({code})
        """,
    )
    result = job(cluster, "submit", "--wait", "--env", "GREETING=hi", path, "--", "a", "-b")
    assert result.returncode == code, result.stderr
    assert f"out ['a', '-b'] {cluster.scheduler_address}" in result.stdout
    assert "err hi" in result.stderr
    assert "Traceback" not in result.stderr


def test_wait_shows_output_while_the_script_runs(cluster, tmp_path):
    path = script(
        tmp_path,
        """
        import time
        for n in range(4):
            print("tick", n)
            time.sleep(1)
        print("the end")
        """,
    )
    waiting = DaskProcess(
        dask_command("job", "submit", "--block", path, "--scheduler", cluster.scheduler_address)
    )
    try:
        waiting.wait_for(r"tick 1", timeout=30)
        assert waiting.alive()
        assert "the end" not in waiting.output()
        assert waiting.wait(30) == 0
        assert "the end" in waiting.output()
    finally:
        waiting.close()


def test_submit_then_gather_from_a_new_process(cluster, tmp_path):
    marker = tmp_path / "go"
    path = script(
        tmp_path,
        f"""
        import pathlib, sys, time
        print("started", flush=True)
        while not pathlib.Path({str(marker)!r}).exists():
            time.sleep(0.05)
        print("bye"); print("oops", file=sys.stderr)
        sys.exit(5)
        """,
    )
    submitted = job(cluster, "submit", "--name", "later", path)
    assert submitted.returncode == 0, submitted.stderr
    key = submitted.stdout.strip()
    assert key.startswith("job-later-")
    running = wait_for_state(cluster, key, {"RUNNING"})
    assert running["worker_name"] in ("w1", "w2")
    early = job(cluster, "gather", "--no-wait", key)
    assert early.returncode == 1
    assert "RUNNING" in early.stderr and "Traceback" not in early.stderr
    following = DaskProcess(
        dask_command("job", "logs", "-f", key, "--scheduler", cluster.scheduler_address)
    )
    try:
        following.wait_for("started")
        assert following.alive()
        marker.write_text("go")
        assert following.wait(30) == 0
        assert "bye" in following.output() and "oops" in following.output()
    finally:
        following.close()
    gathered = job(cluster, "gather", key)
    assert gathered.returncode == 5, gathered.stderr
    assert gathered.stdout == "started\nbye\n"
    assert "oops" not in gathered.stderr
    both = job(cluster, "gather", "--stderr", key)
    assert both.stdout == "started\nbye\n" and "oops" in both.stderr
    logs = job(cluster, "logs", key)
    assert logs.returncode == 0 and "bye" in logs.stdout and "oops" in logs.stderr
    status = job(cluster, "status", key)
    assert "FAILED" in status.stdout and "exit status 5" in status.stdout


def _rss_of(argv: list[str], out) -> tuple[int, int]:
    """Exit status and peak RSS (KiB) of a process writing to ``out``."""
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def test_gather_50_megabytes_with_bounded_memory(cluster, tmp_path):
    big = script(
        tmp_path,
        """
        import sys
        line = ("x" * 99 + "\\n").encode()
        for n in range(500):
            sys.stdout.buffer.write(line * 1000)
        """,
        name="big.py",
    )
    small = script(tmp_path, "print('small')", name="small.py")
    keys = [submit(cluster, path) for path in (big, small)]
    for key in keys:
        assert wait_for_state(cluster, key, {"SUCCEEDED", "FAILED"})["state"] == "SUCCEEDED"
    argv = [*dask_command("job", "gather", "--scheduler", cluster.scheduler_address)]
    with open(tmp_path / "small.out", "wb") as out:
        code, baseline = _rss_of([*argv, keys[1]], out)
    assert code == 0
    with open(tmp_path / "big.out", "wb") as out:
        code, peak = _rss_of([*argv, keys[0]], out)
    assert code == 0
    data = (tmp_path / "big.out").read_bytes()
    assert len(data) == 50_000_000
    assert (
        hashlib.sha256(data).digest()
        == hashlib.sha256(("x" * 99 + "\n").encode() * 500_000).digest()
    )
    # 50 MB held in memory would add at least 50 MB; streaming adds a few chunks.
    assert peak - baseline < 25_000, (baseline, peak)
    # `| head`: a closed pipe ends gather quietly.
    head = subprocess.Popen([*argv, keys[0]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert head.stdout.readline() == b"x" * 99 + b"\n"
    head.stdout.close()
    assert head.wait(30) == 141
    assert head.stderr.read() == b""


def test_a_script_with_its_own_client_on_the_same_cluster(cluster, tmp_path):
    path = script(
        tmp_path,
        """
        import sys
        from distributed import Client

        with Client() as client:  # DASK_SCHEDULER_ADDRESS
            # w1 has one thread, and this job runs on it: the job's task seceded.
            futures = client.map(lambda x: x * 2, range(10), workers=[sys.argv[1]])
            print("sum", sum(client.gather(futures)))
        """,
    )
    result = job(cluster, "submit", "--wait", "--worker", "w1", path, "w1", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "sum 90" in result.stdout


def test_cancel_a_sleeping_job_ends_its_processes(cluster, tmp_path):
    pids = tmp_path / "pids"
    path = script(
        tmp_path,
        f"""
        import pathlib, subprocess, sys, os, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        pathlib.Path({str(pids)!r}).write_text(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(120)
        """,
    )
    key = submit(cluster, path, worker="w2")
    script_pid, child_pid = map(int, wait_for_file(pids).split())
    # The shell and the job meet: the worker's tasks() shows it running.
    shell = run_dask(
        "worker", "shell", "w2", "-c", "print(tasks()); print(jobs())",
        "--scheduler", cluster.scheduler_address,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    assert key in shell.stdout and "long-running" in shell.stdout
    assert any(key in line and str(script_pid) in line for line in shell.stdout.splitlines())
    assert record(cluster, key)["pid"] == script_pid
    cancelled = job(cluster, "cancel", key)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "CANCELLED" in cancelled.stdout
    assert gone(script_pid) and gone(child_pid)
    assert record(cluster, key)["state"] == "CANCELLED"
    again = job(cluster, "cancel", key)
    assert again.returncode == 0 and "already ended" in again.stderr
    gathered = job(cluster, "gather", key)
    assert gathered.returncode == 128 + signal.SIGTERM
    assert "cancelled" in gathered.stderr


def test_cancel_a_pending_job_it_never_starts(cluster, tmp_path):
    marker = tmp_path / "ran"
    path = script(tmp_path, f"open({str(marker)!r}, 'w').write('ran')")
    submitted = job(cluster, "submit", "--resources", "UNICORN=1", path)
    assert submitted.returncode == 0
    assert "No worker offers UNICORN=1" in submitted.stderr
    key = submitted.stdout.strip()
    assert record(cluster, key)["state"] == "PENDING"
    cancelled = job(cluster, "cancel", key)
    assert "CANCELLED" in cancelled.stdout
    assert not marker.exists()


def test_ctrl_c_under_wait_without_a_terminal_leaves_the_job_running(cluster, tmp_path):
    path = script(tmp_path, "import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    waiting = DaskProcess(
        dask_command("job", "submit", "--wait", path, "--scheduler", cluster.scheduler_address)
    )
    try:
        waiting.wait_for(r"(?m)^up$", timeout=30)
        key = waiting.wait_for(r"Job (job-\S+) submitted").group(1)
        waiting.send_signal(signal.SIGINT)
        assert waiting.wait(20) == 130
        assert "keeps running" in waiting.output()
        assert "Traceback" not in waiting.output()
        assert record(cluster, key)["state"] == "RUNNING"
    finally:
        waiting.close()
    assert "CANCELLED" in job(cluster, "cancel", key).stdout


def test_ctrl_c_under_wait_in_a_terminal_asks_and_cancels(cluster, tmp_path):
    path = script(tmp_path, "import time\nprint('up', flush=True)\ntime.sleep(120)\n")
    args = ("job", "submit", "--wait", path, "--scheduler", cluster.scheduler_address)
    with dask_terminal(*args) as child:
        child.expect(r"Job (job-\S+) submitted")
        key = child.match.group(1)
        child.expect("up")
        child.sendintr()
        child.expect(r"Cancel job .*\?")
        child.sendline("y")
        child.expect("CANCELLED")
    assert child.exitstatus == 130
    assert record(cluster, key)["state"] == "CANCELLED"


def test_list_one_hundred_jobs(cluster, tmp_path):
    from dask_cli.jobs import client as jobs

    path = script(tmp_path, "print('hi')")

    async def submit_all() -> list[str]:
        connected = await jobs.connect_client(settings(cluster))
        try:
            request = jobs.SubmitRequest(script=path, name="many")
            return [(await jobs.submit_with(connected, request)).record.key for _ in range(100)]
        finally:
            await connected.close()

    keys = asyncio.run(submit_all())
    for key in keys:
        wait_for_state(cluster, key, {"SUCCEEDED", "FAILED"}, timeout=60)
    listed = job(cluster, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    mine = {r["key"]: r for r in json.loads(listed.stdout) if r["key"] in keys}
    assert len(mine) == 100
    assert {r["state"] for r in mine.values()} == {"SUCCEEDED"}
    assert {r["worker_name"] for r in mine.values()} <= {"w1", "w2"}
    table = run_dask(
        "job", "list", "--scheduler", cluster.scheduler_address, env={"COLUMNS": "200"}
    )
    assert table.returncode == 0
    assert sum(key in table.stdout for key in keys) == 100


def test_working_dir_ships_a_module_the_script_imports(cluster, tmp_path):
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "helper.py").write_text("GREETING = 'from helper'\n")
    (project / "pkg" / "__init__.py").write_text("")
    (project / "data.txt").write_text("data file\n")
    inside = script(
        project / "pkg",
        "import helper\nprint(helper.GREETING)\nprint(open('data.txt').read().strip())\n",
        name="main.py",
    )
    result = job(cluster, "submit", "--wait", "--working-dir", str(project), inside)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["from helper", "data file"]
    outside = script(tmp_path, "import helper\nprint(helper.GREETING)\n", name="outside.py")
    result = job(cluster, "submit", "--wait", "--working-dir", str(project), outside)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from helper\n"


def test_working_dir_over_the_limit_is_one_clear_line(cluster, tmp_path):
    project = tmp_path / "big"
    project.mkdir()
    (project / "blob").write_bytes(b"0" * 4096)
    path = script(project, "print(1)")
    result = run_dask(
        "job", "submit", "--working-dir", str(project), path,
        "--scheduler", cluster.scheduler_address,
        env={"DASK_CLI__JOB__MAX_UPLOAD": "2 kiB"},
    )  # fmt: skip
    assert result.returncode == 1
    assert "a job can ship at most 2.00 kiB" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["submit", "--env", "NOEQUALS", "{script}"], 2, "is not NAME=VALUE"),
        (["submit", "--resources", "GPU=lots", "{script}"], 2, "is not a number"),
        (["submit", "{missing}"], 2, "does not exist"),
        (["submit", "--worker", "nosuch", "{script}"], 1, "No worker 'nosuch'"),
        (["status", "job-nope-123"], 1, "No job job-nope-123"),
        (["gather", "job-nope-123"], 1, "No job job-nope-123"),
        (["cancel", "job-nope-123"], 1, "No job job-nope-123"),
    ],
)
def test_bad_input_is_one_line(cluster, tmp_path, args, code, message):
    path = script(tmp_path, "print(1)")
    filled = [a.format(script=path, missing=str(tmp_path / "missing.py")) for a in args]
    result = job(cluster, *filled)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(240)
def test_worker_killed_during_a_job_fails_it_and_never_reruns_it(tmp_path):
    marker = tmp_path / "marker"
    pids = tmp_path / "pid"
    path = script(
        tmp_path,
        f"""
        import os, time
        with open({str(marker)!r}, "a") as f:
            f.write("ran\\n")
        open({str(pids)!r}, "w").write(str(os.getpid()))
        time.sleep(120)
        """,
    )
    with process_cluster(tmp_path, workers=("w1", "w2")) as cluster:
        fresh = job(cluster, "status", "job-none-000000000000")
        assert fresh.returncode == 1 and "no dask-cli job registry" in fresh.stderr
        key = job(cluster, "submit", path).stdout.strip()
        script_pid = int(wait_for_file(pids))
        worker_pid = int(Path(f"/proc/{script_pid}/stat").read_text().split()[3])
        os.kill(worker_pid, signal.SIGKILL)
        failed = wait_for_state(cluster, key, {"FAILED", "SUCCEEDED", "CANCELLED"})
        assert failed["state"] == "FAILED"
        assert "died or left the cluster" in failed["reason"]
        assert gone(script_pid)
        # The nanny restarts the worker; distributed would reschedule the task on it.
        deadline = time.monotonic() + 30
        while cluster.workers[failed["worker_name"]].output().count("Registered to:") < 2:
            assert time.monotonic() < deadline, cluster.dump_logs()
            time.sleep(0.2)
        time.sleep(2)
        assert marker.read_text() == "ran\n"
        assert record(cluster, key)["state"] == "FAILED"
        gathered = job(cluster, "gather", key)
        assert gathered.returncode == 1
        assert "left the cluster" in gathered.stderr and "Traceback" not in gathered.stderr
