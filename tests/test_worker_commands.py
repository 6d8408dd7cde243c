"""`dask worker shell|list|exec|stack|logs` and `dask scheduler shell` end to end:
real `dask scheduler` / `dask worker` processes on 127.0.0.1, the CLI as a user runs it."""

from __future__ import annotations

import json
import time

import pytest

from dask_cli.testing import LOCALHOST, dask_command, probe_imports, process_cluster, run_dask

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module: tests only read from it (and block w2 briefly)."""
    with process_cluster(tmp_path_factory.mktemp("cluster"), workers=("w1", "w2")) as running:
        yield running


@pytest.fixture(scope="module")
def client(cluster):
    from distributed import Client

    with Client(cluster.scheduler_address, timeout=30) as c:
        yield c


def dask(cluster, *args, **kwargs):
    return run_dask(*args, "--scheduler-file", cluster.scheduler_file, **kwargs)


def address_of(client, name):
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return next(a for a, info in workers.items() if info["name"] == name)


def test_shell_by_name_and_by_address(cluster, client):
    result = dask(cluster, "worker", "shell", "w1", "-c", "print(worker.name)")
    assert (result.returncode, result.stdout, result.stderr) == (0, "w1\n", "")
    address = address_of(client, "w2")
    result = dask(cluster, "worker", "shell", address, "-c", "print(worker.name)")
    assert (result.returncode, result.stdout) == (0, "w2\n")


def test_shell_by_address_without_scheduler(cluster, client):
    address = address_of(client, "w1")
    result = run_dask("worker", "shell", address, "-c", "print(worker.name)")
    assert (result.returncode, result.stdout) == (0, "w1\n"), result.stderr


def test_shell_by_hostname_address_the_scheduler_does_not_know(cluster, client):
    """The scheduler knows workers by IP (127.0.0.1); a hostname address (as in a
    docker-compose file) goes to the worker directly, shell or worker address alike."""
    address = address_of(client, "w1")
    shell = client.run(lambda dask_worker: dask_worker.dask_cli_shell.address)[address]
    for given in (shell, address):
        by_hostname = given.replace(LOCALHOST, "localhost")
        result = dask(cluster, "worker", "shell", by_hostname, "-c", "print(worker.name)")
        assert (result.returncode, result.stdout) == (0, "w1\n"), result.stderr
    # Neither the scheduler nor the address knows it: one error that says both.
    result = dask(cluster, "worker", "shell", "tcp://localhost:1", "-c", "1", "--timeout", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "localhost:1" in result.stderr and "No worker named" in result.stderr


def test_unknown_and_ambiguous_names(cluster):
    result = dask(cluster, "worker", "shell", "nope", "-c", "1")
    assert result.returncode == 1
    assert "No worker named 'nope'" in result.stderr and "w1, w2" in result.stderr
    assert "Traceback" not in result.stderr
    result = dask(cluster, "worker", "shell", "w", "-c", "1")
    assert result.returncode == 1
    assert "matches several workers" in result.stderr
    assert "w1 (" in result.stderr and "w2 (" in result.stderr


def test_script_stdin_and_exit_status(cluster, tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\nprint('out')\nprint('err', file=sys.stderr)\nraise KeyError('k')\n"
    )
    result = dask(cluster, "worker", "shell", "w1", str(script))
    assert result.returncode == 1
    assert result.stdout == "out\n"
    assert "err\n" in result.stderr and "KeyError: 'k'" in result.stderr
    assert str(script) in result.stderr  # the traceback names the script
    result = dask(cluster, "worker", "shell", "w1", input="x = 20\nprint(x + 1)\n")
    assert (result.returncode, result.stdout) == (0, "21\n")
    result = dask(cluster, "worker", "shell", "w1", "-c", "exit()")
    assert result.returncode == 0


def test_session_sees_submitted_work(cluster, client):
    future = client.submit(lambda: 123, key="answer", workers=["w1"])
    assert future.result() == 123
    code = "print(data['answer']); print(tasks()[0][:2]); print(len(story('answer')) > 0)"
    result = dask(cluster, "worker", "shell", "w1", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["123", "('answer', 'memory')", "True"]
    result = dask(
        cluster, "worker", "shell", "w1", "-c", "print((await worker.scheduler.identity())['type'])"
    )
    assert result.stdout == "Scheduler\n"
    del future


def test_list_table_and_json(cluster, client):
    result = dask(cluster, "worker", "list", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["name"] for r in records] == ["w1", "w2"]
    assert all(r["shell_address"].startswith("tcp://127.0.0.1:") for r in records)
    assert {r["status"] for r in records} == {"running"}
    assert records[0]["address"] == address_of(client, "w1")
    result = dask(cluster, "worker", "list", env={"COLUMNS": "200"})
    assert result.returncode == 0
    for word in ("name", "shell address", "w1", "w2", "running"):
        assert word in result.stdout


def test_exec_all_groups_output_and_fails_if_any_raised(cluster):
    code = "print('hello from', worker.name)\nif worker.name == 'w2': raise RuntimeError('bad')"
    result = dask(cluster, "worker", "exec", "--all", "-c", code)
    assert result.returncode == 1
    out = result.stdout
    assert out.index("w1 (") < out.index("hello from w1") < out.index("w2 (")
    assert "hello from w2" in out
    assert "RuntimeError: bad" in result.stderr
    result = dask(cluster, "worker", "exec", "w1", "-c", "print(1)")
    assert result.returncode == 0 and "1\n" in result.stdout
    result = dask(cluster, "worker", "exec", "-c", "print(1)")
    assert result.returncode == 1 and "--all" in result.stderr


def test_logs(cluster):
    result = dask(cluster, "worker", "logs", "w1", "-n", "200")
    assert result.returncode == 0
    assert "Shell at:" in result.stdout
    result = dask(cluster, "worker", "logs", "w1", "-n", "2")
    assert len(result.stdout.splitlines()) == 2


def test_scheduler_shell(cluster):
    result = dask(cluster, "scheduler", "shell", "-c", "print(len(scheduler.workers))")
    assert (result.returncode, result.stdout) == (0, "2\n"), result.stderr


def test_stack_while_event_loop_is_blocked(cluster, client, tmp_path):
    marker = tmp_path / "blocking"

    def block_the_loop():
        marker.touch()
        time.sleep(6)

    def schedule_block():
        from distributed import get_worker

        get_worker().loop.add_callback(block_the_loop)

    # Not .result(): the worker reports the task done only once its loop is free.
    future = client.submit(schedule_block, workers=["w2"], pure=False)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the loop was never blocked"
        time.sleep(0.02)
    start = time.monotonic()
    result = dask(cluster, "worker", "stack", "w2", timeout=30)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 6  # answered while the loop was still blocked
    assert "block_the_loop" in result.stdout
    assert "(event loop)" in result.stdout
    # The shell itself answers too (plain code runs on the session's thread).
    result = dask(cluster, "worker", "shell", "w2", "-c", "print('alive')")
    assert result.stdout == "alive\n"
    future.result(timeout=30)  # w2's loop is free again for the tests that follow


def test_audit_events_reach_the_scheduler(cluster, client):
    dask(cluster, "worker", "shell", "w1", "-c", "audit_me = 1")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sources = [e["source"] for _, e in client.get_events("dask-cli-shell")]
        if "audit_me = 1" in sources:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no audit event: {sources}")


def test_unreachable_scheduler_is_one_line(tmp_path):
    result = run_dask("worker", "list", "--scheduler", f"tcp://{LOCALHOST}:1", "--timeout", "2")
    assert result.returncode == 1
    assert result.stderr.startswith("Error:") and "Traceback" not in result.stderr


def test_no_shell_worker_has_no_service(cluster):
    worker = cluster.start_worker("quiet", "--no-shell")
    try:
        assert "Shell at:" not in worker.output()
        result = dask(cluster, "worker", "shell", "quiet", "-c", "1")
        assert result.returncode == 1
        assert "no shell service" in result.stderr
    finally:
        worker.close()
        del cluster.workers["quiet"]


@pytest.mark.timeout(90)
def test_tls_cluster_requires_certificates(tmp_path, tls_files, other_tls_files):
    tls = ["--tls-ca-file", tls_files.ca_file, "--tls-cert", tls_files.cert]
    tls += ["--tls-key", tls_files.key]
    with process_cluster(
        tmp_path, workers=("t1",), scheduler_args=["--protocol", "tls", *tls], worker_args=tls
    ) as tls_cluster:
        scheduler = ["--scheduler-file", tls_cluster.scheduler_file]
        good = ["--tls-ca-file", tls_files.ca_file, "--tls-cert", tls_files.cert]
        good += ["--tls-key", tls_files.key]
        result = run_dask("worker", "list", "--json", *scheduler, *good)
        assert result.returncode == 0, result.stderr
        shell_address = json.loads(result.stdout)[0]["shell_address"]
        assert shell_address.startswith("tls://")
        result = run_dask("worker", "shell", "t1", "-c", "print(worker.name)", *scheduler, *good)
        assert (result.returncode, result.stdout) == (0, "t1\n"), result.stderr

        # Straight to the shell address: untrusted certificates, or none, are refused.
        bad = ["--tls-ca-file", other_tls_files.ca_file, "--tls-cert", other_tls_files.cert]
        bad += ["--tls-key", other_tls_files.key]
        marker = tmp_path / "ran"
        code = f"open({str(marker)!r}, 'w').close()"
        for creds in (bad, ["--tls-ca-file", tls_files.ca_file]):
            result = run_dask(
                "worker", "shell", shell_address, "-c", code, "--timeout", "5", *creds
            )
            assert result.returncode == 1
            assert result.stderr.startswith("Error:") and "Traceback" not in result.stderr
            assert "TLS" in result.stderr
        result = run_dask("worker", "shell", shell_address, "-c", code, "--timeout", "5")
        assert result.returncode == 1
        assert not marker.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("worker", "shell", "--help"),
        ("worker", "list", "--help"),
        ("worker", "exec", "--help"),
        ("scheduler", "shell", "--help"),
    ],
    ids=" ".join,
)
def test_help_does_not_import_distributed(args):
    probe = probe_imports(*args)
    assert probe.exit_code == 0
    assert probe.heavy_modules == []


def test_ctrl_c_interrupts_remote_code_not_the_worker(cluster):
    import signal

    from dask_cli.testing import DaskProcess

    code = "import time\nprint('sleeping', flush=True)\ntime.sleep(30)"
    process = DaskProcess(
        dask_command(
            "worker", "shell", "w1", "-c", code, "--scheduler-file", cluster.scheduler_file
        )
    )
    try:
        process.wait_for("sleeping", 30)
        start = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130
        assert time.monotonic() - start < 5
        assert "KeyboardInterrupt" in process.output()
    finally:
        process.close()
    result = dask(cluster, "worker", "shell", "w1", "-c", "print(worker.status.name)")
    assert result.stdout == "running\n"
