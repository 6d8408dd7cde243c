"""`dask ssh` against a real OpenSSH server on 127.0.0.1 (see conftest.py).

A cluster comes up on two hosts (`127.0.0.1`, `localhost`), computes, a remote worker
answers `dask worker shell`, a worker that dies is reported while the rest run, and
Ctrl-C or a killed `dask ssh` leaves no remote process behind (checked by pid).
Each way of failing to start ends within 10 s with its own message and exit 1.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time

import psutil
import pytest

from dask_cli.ssh.testing import ALIAS
from dask_cli.testing import probe_imports, run_dask

READY = r"Scheduler at (tcp://\S+)"

# Every cluster here binds 127.0.0.1 and random ports only. Remote processes run this
# venv's Python (sshd's sessions do not inherit our PATH).
LOCAL_CLUSTER_ARGS = [
    "--scheduler-port", "0",
    "--dashboard-address", "127.0.0.1:0",
    "--nthreads", "1",
    "--memory-limit", "0",
    "--remote-python", sys.executable,
]  # fmt: skip


def started_pids(output: str) -> dict[str, int]:
    """label -> pid of every remote process, from `dask ssh`'s "started, pid N" lines."""
    return {
        label: int(pid) for label, pid in re.findall(r"dask ssh: (.+?) started, pid (\d+)", output)
    }


def assert_all_gone(pids, timeout: float = 25) -> None:
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and not _zombie(p)]
        time.sleep(0.1)
    for pid in alive:  # do not leave them behind for the next test
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"remote processes still running: {alive}"


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(120)
def test_cluster_on_two_hosts_computes_shells_reports_a_death_and_stops_on_ctrl_c(
    sshd, dask_ssh, tmp_path
):
    from distributed import Client

    logs = tmp_path / "logs"
    logs.mkdir()
    proc = dask_ssh(
        "127.0.0.1", "localhost", *sshd.client_args(), *LOCAL_CLUSTER_ARGS,
        "--log-directory", str(logs),
    )  # fmt: skip
    address = proc.wait_for(READY, 60).group(1)
    proc.wait_for("Ctrl-C stops the cluster", 10)  # the last line of the banner
    output = proc.output()
    assert "(2 workers on 2 hosts)" in output
    assert f"dask worker list --scheduler {address}" in output
    pids = started_pids(output)
    assert set(pids) == {"scheduler 127.0.0.1", "worker 127.0.0.1", "worker localhost"}
    # Remote output, prefixed by role and host.
    assert re.search(r"^\[scheduler 127\.0\.0\.1\] .*Scheduler at:", output, re.M)
    assert re.search(r"^\[worker localhost\] .*Registered to:", output, re.M)

    def flood_stderr() -> bool:  # nested: pickled by value, the workers cannot import us
        line = b"y" * 1023 + b"\n"
        for _ in range(4096):
            os.write(2, line)
        os.write(2, b"flood done\n")
        return True

    with Client(address, timeout=10) as client:
        assert client.submit(sum, [1, 2]).result(timeout=10) == 3
        worker_pids = client.run(os.getpid)
        # Output long after start-up is still read: 4 MiB, twice the SSH window, would
        # block the worker for good otherwise (distributed issue 9033).
        assert set(client.run(flood_stderr).values()) == {True}
    assert len(worker_pids) == 2
    proc.wait_for(r"\[worker localhost\] flood done", 30)

    worker, worker_pid = next(iter(worker_pids.items()))
    assert re.search(rf"dask worker shell tcp://\S+ --scheduler {address}", output)
    shell = run_dask(
        "worker", "shell", worker, "--scheduler", address,
        "-c", "import os; print('pid', os.getpid())",
        timeout=30,
    )  # fmt: skip
    assert shell.returncode == 0, shell.stderr
    assert f"pid {worker_pid}" in shell.stdout

    # --log-directory: one file per remote process, the output as it came.
    files = {f.name: f for f in logs.glob("dask-ssh_*/*.log")}
    assert set(files) == {"scheduler-127.0.0.1.log", "worker-127.0.0.1.log", "worker-localhost.log"}
    assert "Scheduler at:" in files["scheduler-127.0.0.1.log"].read_text()

    # A worker host's process dies: reported with its last lines, the rest keep running.
    os.killpg(pids["worker localhost"], signal.SIGKILL)
    proc.wait_for(r"worker localhost was killed by SIGKILL; its last lines:", 20)
    with Client(address, timeout=10) as client:
        client.wait_for_workers(1, timeout=10)
        assert client.submit(sum, [3, 4]).result(timeout=10) == 7
    assert proc.alive()

    proc.send_signal(signal.SIGINT)
    assert proc.wait(40) == 0
    assert "remote processes stopped" in proc.output()
    assert_all_gone([*pids.values(), *worker_pids.values()])


@pytest.mark.timeout(90)
def test_ssh_config_alias_and_a_killed_dask_ssh_leaves_no_remote_process(sshd, dask_ssh):
    """`dask ssh daskbox`: HostName, Port, User, IdentityFile and UserKnownHostsFile all
    come from ~/.ssh/config. Then `dask ssh` is SIGKILLed: it cannot clean up, and the
    remote side must stop itself when the connection goes."""
    from distributed import Client

    proc = dask_ssh(ALIAS, *LOCAL_CLUSTER_ARGS)
    address = proc.wait_for(READY, 60).group(1)
    pids = started_pids(proc.output())
    assert set(pids) == {f"scheduler {ALIAS}", f"worker {ALIAS}"}
    with Client(address, timeout=10) as client:
        worker_pids = client.run(os.getpid)
        # --host is the alias's HostName, which the remote host can resolve.
        assert {w.split("//")[1].split(":")[0] for w in worker_pids} == {"127.0.0.1"}

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert_all_gone([*pids.values(), *worker_pids.values()])


@pytest.mark.timeout(90)
def test_ctrl_c_while_starting_stops_what_was_started(sshd, dask_ssh):
    """Ctrl-C as soon as the remote processes exist: workers still waiting for the
    scheduler's address stop too, and the exit status is 0."""
    proc = dask_ssh("127.0.0.1", *sshd.client_args(), *LOCAL_CLUSTER_ARGS)
    proc.wait_for(r"worker 127\.0\.0\.1 started, pid \d+", 60)
    proc.wait_for(r"scheduler 127\.0\.0\.1 started, pid \d+", 60)
    pids = started_pids(proc.output())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(40) == 0
    assert_all_gone(pids.values())


@pytest.mark.timeout(120)
def test_name_makes_it_a_named_cluster_until_dask_cluster_stop(sshd, dask_ssh, tmp_path):
    """`--name`: `dask cluster list` shows it, `--cluster NAME` reaches it, a second
    `dask ssh --name` of the same name fails before connecting, and `dask cluster stop`
    (SIGTERM to `dask ssh`) stops every remote process and removes the record."""
    import json

    env = {**sshd.env(), "DASK_CLI__CLUSTER__STATE_DIR": str(tmp_path / "state")}
    proc = dask_ssh(ALIAS, *LOCAL_CLUSTER_ARGS, "--name", "over-ssh", env=env)
    address = proc.wait_for(READY, 60).group(1)
    proc.wait_for("registered as cluster 'over-ssh'", 10)
    pids = started_pids(proc.output())

    listed = run_dask("cluster", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (record,) = [r for r in json.loads(listed.stdout) if r["name"] == "over-ssh"]
    assert record["status"] == "running"
    assert address in json.dumps(record)
    workers = run_dask("worker", "list", "--cluster", "over-ssh", "--json", env=env)
    assert workers.returncode == 0, workers.stderr
    assert len(json.loads(workers.stdout)) == 1

    again = run_dask("ssh", ALIAS, *LOCAL_CLUSTER_ARGS, "--name", "over-ssh", env=env)
    assert again.returncode == 1
    assert "a cluster named 'over-ssh' already exists" in again.stderr
    assert "started, pid" not in again.stdout

    stopped = run_dask("cluster", "stop", "over-ssh", env=env, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert proc.wait(40) == 0
    assert_all_gone(pids.values())
    listed = run_dask("cluster", "list", "--json", env=env)
    assert "over-ssh" not in listed.stdout


def _changed_known_hosts(sshd, tmp_path) -> str:
    path = tmp_path / "known_hosts"
    other = sshd.other_key.with_suffix(".pub").read_text().strip()
    path.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    return str(path)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "case",
    ["wrong key", "closed port", "unknown host key", "changed host key", "python without dask",
     "python missing", "insecure", "scheduler fails"],
)  # fmt: skip
def test_start_up_failures_are_one_clear_line_within_10_s(
    sshd, python_without_dask, tmp_path, case
):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    taken = socket.create_server(("127.0.0.1", 0))  # a port the scheduler cannot have
    port, key, known = str(sshd.port), str(sshd.user_key), str(sshd.known_hosts)
    args, expected = {
        "wrong key": (
            ["--ssh-port", port, "--ssh-private-key", str(sshd.other_key), "--known-hosts", known],
            f"127.0.0.1:{port}: the server refused the login (tried key {sshd.other_key})",
        ),
        "closed port": (
            ["--ssh-port", str(_closed_port()), "--ssh-private-key", key],
            "connection refused: no SSH server listens there",
        ),
        "unknown host key": (
            ["--ssh-port", port, "--ssh-private-key", key, "--known-hosts", str(empty)],
            f"[127.0.0.1]:{port}: unknown host key (not in {empty})",
        ),
        "changed host key": (
            ["--ssh-port", port, "--ssh-private-key", key,
             "--known-hosts", _changed_known_hosts(sshd, tmp_path)],
            f"[127.0.0.1]:{port}: the host key CHANGED",
        ),
        "python without dask": (
            [*sshd.client_args(), "--remote-python", python_without_dask],
            f"127.0.0.1: dask-cli is not installed for {python_without_dask}",
        ),
        "python missing": (
            [*sshd.client_args(), "--remote-python", "/nonexistent/bin/python3"],
            "127.0.0.1: cannot run /nonexistent/bin/python3",
        ),
        # --insecure gets past an unknown host key (to the next failure), with a warning.
        "insecure": (
            ["--ssh-port", port, "--ssh-private-key", key, "--known-hosts", str(empty),
             "--insecure", "--remote-python", python_without_dask],
            f"127.0.0.1: dask-cli is not installed for {python_without_dask}",
        ),
        # A remote process that exits while starting: its last lines, then one line.
        "scheduler fails": (
            [*sshd.client_args(), "--remote-python", sys.executable,
             "--scheduler-port", str(taken.getsockname()[1])],
            "Error: the scheduler 127.0.0.1 exited with status 1 during start-up",
        ),
    }[case]  # fmt: skip
    start = time.monotonic()
    result = run_dask(
        "ssh", "127.0.0.1", "--scheduler-port", "0", "--dashboard-address", "127.0.0.1:0",
        *args, env=sshd.env(), timeout=60,
    )  # fmt: skip
    taken.close()
    elapsed = time.monotonic() - start
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    # The scheduler's own start (importing distributed) is not bounded by us: only
    # the failures dask ssh finds itself have the 10 s bound.
    assert elapsed < (45 if case == "scheduler fails" else 10)
    if case == "insecure":
        assert "--insecure: host keys are not checked" in result.stderr
    if case == "scheduler fails":
        last_lines = result.stderr.split("its last lines:")[1]
        assert "Scheduler failed to start" in last_lines


@pytest.mark.timeout(30)
def test_no_hosts_is_a_usage_error():
    result = run_dask("ssh")
    assert result.returncode == 2
    assert "Give at least one host" in result.stderr


@pytest.mark.timeout(30)
def test_help_lists_distributed_flags_without_importing_asyncssh():
    probe = probe_imports("ssh", "--help")
    assert (probe.exit_code, probe.heavy_modules) == (0, [])
    for flag in (
        "--scheduler ", "--scheduler-port", "--nthreads", "--nworkers", "--hostfile",
        "--ssh-username", "--ssh-port", "--ssh-private-key", "--nohost", "--log-directory",
        "--local-directory", "--remote-python", "--memory-limit", "--worker-port",
        "--nanny-port", "--remote-dask-worker", "--keepalive", "--shell-port",
        "--known-hosts", "--insecure", "--name",
    ):  # fmt: skip
        assert flag in probe.output
