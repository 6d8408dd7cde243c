"""`dask worker shell|list|exec|stack|logs` and `dask scheduler shell` end to end:
real `dask scheduler` / `dask worker` processes on 127.0.0.1, the CLI as a user runs it."""

from __future__ import annotations

import contextlib
import json
import re
import time

import pytest

from dask_cli.testing import (
    LOCALHOST,
    dask_command,
    dask_terminal,
    invoke_dask,
    probe_imports,
    process_cluster,
    run_dask,
)

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


def invoke(cluster, *args):
    """``dask ARGS... --scheduler-file FILE`` in this process."""
    return invoke_dask(*args, "--scheduler-file", cluster.scheduler_file)


def dask_command_for(cluster, *args):
    return dask_command(*args, "--scheduler-file", cluster.scheduler_file)


def dask(cluster, *args, **kwargs):
    return run_dask(*args, "--scheduler-file", cluster.scheduler_file, **kwargs)


def address_of(client, name):
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return next(a for a, info in workers.items() if info["name"] == name)


BLOCKED_SECONDS = 6


@contextlib.contextmanager
def loop_blocked(client, name, tmp_path, seconds=BLOCKED_SECONDS):
    """Worker ``name``'s event loop blocked for ``seconds`` (a loop callback that
    sleeps), from before the body runs. On exit, wait until the loop is free again, so
    the tests that follow find the worker answering."""
    marker = tmp_path / "blocking"

    def block_the_loop():
        marker.touch()
        time.sleep(seconds)

    def schedule_block():
        from distributed import get_worker

        get_worker().loop.add_callback(block_the_loop)

    # Not .result() yet: the worker reports the task done only once its loop is free.
    future = client.submit(schedule_block, workers=[name], pure=False)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the loop was never blocked"
        time.sleep(0.02)
    try:
        yield
    finally:
        future.result(timeout=30)


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
    result = dask(cluster, "worker", "list", env={"COLUMNS": "80"})
    assert (result.returncode, result.stderr) == (0, "")  # no progress on a pipe
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["name", "address", "status", "threads", "memory", "tasks"] + [
        "shell",
        "address",
    ]
    assert [row.split() for row in rows] == [
        [r["name"], r["address"], "running", "1", "-", "0", r["shell_address"]] for r in records
    ]


@pytest.mark.timeout(120)
def test_empty_listings_say_so_on_stderr(tmp_path):
    """A scheduler without workers or jobs: one line on stderr, nothing on stdout, exit 0."""
    with process_cluster(tmp_path, workers=()) as empty:
        for command, message in (
            (("worker", "list"), "The scheduler has no workers."),
            (("job", "list"), "No jobs on this cluster; submit one with `dask job submit"),
        ):
            done = dask(empty, *command)
            assert done.returncode == 0, done.stderr
            assert done.stdout == "" and message in done.stderr
            assert json.loads(dask(empty, *command, "--json").stdout) == []


def test_on_a_terminal_progress_and_a_table_that_keeps_addresses_whole(cluster):
    """On a terminal: a spinner on stderr during a wait longer than half a second, and a
    table whose title has the right plural and whose addresses are never folded."""
    code = "import time; time.sleep(2 if worker.name == 'w2' else 0); print('ok')"
    args = ("worker", "exec", "--all", "-c", code, "--scheduler-file", cluster.scheduler_file)
    with dask_terminal(*args, timeout=60, dimensions=(24, 60)) as child:
        child.expect(r"Running on 2 workers: 1 done")
    assert child.exitstatus == 0
    args = ("worker", "list", "--scheduler-file", cluster.scheduler_file)
    with dask_terminal(*args, timeout=60, dimensions=(24, 60)) as child:
        pass
    text = child.before
    assert "2 workers" in text
    for address in re.findall(r"tcp://127\.0\.0\.1:\d+", text):
        assert len(address) > len("tcp://127.0.0.1:1000")  # whole, port included
    assert len(re.findall(r"tcp://127\.0\.0\.1:\d{4,5}", text)) == 4


def test_exec_streams_prefixed_lines_and_sums_up_failures(cluster):
    code = "print('hello from', worker.name)\nif worker.name == 'w2': raise RuntimeError('bad')"
    result = invoke(cluster, "worker", "exec", "--all", "-c", code)
    assert result.returncode == 1
    assert sorted(result.stdout.splitlines()) == ["w1 | hello from w1", "w2 | hello from w2"]
    assert "w2 | RuntimeError: bad" in result.stderr.splitlines()
    assert result.stderr.splitlines()[-1] == (
        "Error: 1 of 2 workers failed (w2: RuntimeError: bad)"
    )
    result = invoke(cluster, "worker", "exec", "w1", "-c", "print(1)")
    assert (result.returncode, result.stdout, result.stderr) == (0, "w1 | 1\n", "")


def test_exec_group_and_json(cluster):
    code = "import sys; print('out', worker.name); print('err', file=sys.stderr)"
    result = invoke(cluster, "worker", "exec", "w1", "w2", "--group", "-c", code)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("w1", "w2"):
        header = out.index(f"=== {name} (tcp://127.0.0.1:")
        assert out.index(f"out {name}", header) == out.index("\n", header) + 1
    assert result.stderr == "err\nerr\n"
    result = invoke(cluster, "worker", "exec", "--all", "--json", "-c", code)
    records = sorted((json.loads(line) for line in result.stdout.splitlines()), key=str)
    assert [(r["worker"], r["status"], r["stdout"], r["stderr"]) for r in records] == [
        ("w1", "ok", "out w1\n", "err\n"),
        ("w2", "ok", "out w2\n", "err\n"),
    ]


def test_exec_streams_while_a_slow_worker_still_runs(cluster):
    """w1's lines arrive while w2 still sleeps: nothing waits for the slowest worker."""
    from dask_cli.testing import DaskProcess

    code = "import time\nif worker.name == 'w2': time.sleep(8)\nprint('done', flush=True)"
    process = DaskProcess(dask_command_for(cluster, "worker", "exec", "--all", "-c", code))
    try:
        process.wait_for(r"w1 \| done", 30)
        assert "w2 | done" not in process.output()
        process.wait_for(r"w2 \| done", 30)
        assert process.wait(30) == 0
    finally:
        process.close()


def test_exec_on_a_worker_with_a_blocked_loop_fails_it_alone_and_never_late(
    cluster, client, tmp_path
):
    """Through the scheduler, a worker whose event loop is blocked cannot start the
    code: it is reported after --timeout, the others run, and the code never runs
    there later (the request expired)."""
    ran = tmp_path / "ran-on-w2"
    with loop_blocked(client, "w2", tmp_path):
        code = f"if worker.name == 'w2': open({str(ran)!r}, 'w').close()\nprint('ran')"
        args = ("worker", "exec", "--all", "--timeout", "1", "-c", code)
        result = invoke(cluster, *args)
        assert result.returncode == 1
        assert result.stdout == "w1 | ran\n"
        assert "1 of 2 workers failed (w2: did not start within 1 s" in result.stderr
    time.sleep(0.5)
    assert not ran.exists()


def test_exec_needs_names_or_all(cluster):
    for args in ((), ("w1", "--all")):
        result = invoke(cluster, "worker", "exec", *args, "-c", "1")
        assert result.returncode == 2
        assert "Name the workers, or pass --all (not both)." in result.stderr


def test_logs_stack_json(cluster):
    result = invoke(cluster, "worker", "logs", "w1", "-n", "200")
    assert result.returncode == 0
    assert "Shell at:" in result.stdout
    result = invoke(cluster, "worker", "logs", "w1", "-n", "2", "--json")
    record = json.loads(result.stdout)
    assert record["worker"] == "w1" and len(record["lines"]) == 2
    result = invoke(cluster, "worker", "stack", "w1", "--json")
    record = json.loads(result.stdout)
    assert record["worker"] == "w1" and "(event loop)" in record["stacks"]


def test_logs_follow(cluster, client):
    from dask_cli.testing import DaskProcess

    def log_line(text):  # nested: pickled by value, the workers cannot import tests
        import logging

        logging.getLogger("distributed.worker").info(text)

    process = DaskProcess(dask_command_for(cluster, "worker", "logs", "w1", "-f", "-n", "0"))
    try:
        time.sleep(1)  # let it connect (a line logged before that is not "new")
        deadline = time.monotonic() + 30
        marker = "follow-marker-1"
        while marker not in process.output():
            assert time.monotonic() < deadline, process.output()
            client.run(log_line, marker, workers=[address_of(client, "w1")])
            time.sleep(0.5)
        assert process.alive()
    finally:
        process.send_signal()
        code = process.wait(10)
        process.close()
    assert code == 130


def test_scheduler_shell(cluster):
    result = dask(cluster, "scheduler", "shell", "-c", "print(len(scheduler.workers))")
    assert (result.returncode, result.stdout) == (0, "2\n"), result.stderr


def test_stack_while_event_loop_is_blocked(cluster, client, tmp_path):
    with loop_blocked(client, "w2", tmp_path, seconds=BLOCKED_SECONDS):
        start = time.monotonic()
        result = dask(cluster, "worker", "stack", "w2", timeout=30)
        assert result.returncode == 0, result.stderr
        # answered while the loop was still blocked
        assert time.monotonic() - start < BLOCKED_SECONDS
        assert "block_the_loop" in result.stdout
        assert "(event loop)" in result.stdout
        # The shell itself answers too (plain code runs on the session's thread).
        result = dask(cluster, "worker", "shell", "w2", "-c", "print('alive')")
        assert result.stdout == "alive\n"


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


def test_refused_scheduler_is_one_line_at_once():
    result = run_dask("worker", "list", "--scheduler", f"tcp://{LOCALHOST}:1")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: Nothing listens at tcp://{LOCALHOST}:1 (connection refused)",
        "Hint: Check the address: the scheduler prints it at start-up ('Scheduler at: ...'), "
        "or pass --scheduler-file FILE.",
    ]
    invoke_dask("worker", "shell", f"tcp://{LOCALHOST}:1", "-c", "1")  # imports, warm
    start = time.monotonic()
    result = invoke_dask("worker", "shell", f"tcp://{LOCALHOST}:1", "-c", "1", "--timeout", "30")
    assert time.monotonic() - start < 1.0
    assert result.returncode == 1
    assert f"Nothing listens at tcp://{LOCALHOST}:1" in result.stderr


def test_silent_scheduler_times_out_after_timeout():
    import socket

    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        s.listen(8)
        address = f"tcp://{LOCALHOST}:{s.getsockname()[1]}"
        result = invoke_dask("worker", "list", "--scheduler", address, "--timeout", "500ms")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"Error: {address} accepted the connection but sent nothing for 0.5 s "
        "(is the scheduler frozen?)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("worker", "list", "--scheduler", "tcp://"), "'tcp://' is not an address: no host"),
        (("worker", "list", "--scheduler", "foo:bar"), "port 'bar' is not a number"),
        (("worker", "list", "--scheduler", "http://x"), "unknown protocol 'http'"),
        (("worker", "shell", "http://x", "-c", "1"), "Invalid value for 'NAME|ADDRESS'"),
        (("worker", "stack", "tcp://h"), "'tcp://h' is not an address: no port"),
        (("worker", "list", "--timeout", "abc"), "Invalid value for '--timeout': 'abc' is not"),
        (("worker", "logs", "w1", "--timeout", "0"), "'0' must be longer than 0 s"),
        (("worker", "start", "--keepalive-timeout", "soon"), "'--keepalive-timeout': 'soon'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_bad_values_are_usage_errors_naming_the_option(args, message):
    result = invoke_dask(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_time_strings_and_bad_config_values(cluster):
    result = invoke(cluster, "worker", "list", "--json", "--timeout", "5s")
    assert result.returncode == 0, result.stderr
    result = dask(cluster, "worker", "list", env={"DASK_CLI__CLIENT__TIMEOUT": "abc"})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: Config value cli.client.timeout = 'abc' is not a duration",
        "Hint: Set it to seconds or a time string like 10s in your dask config or with "
        "DASK_CLI__CLIENT__TIMEOUT.",
    ]


def test_release_of_a_running_worker_is_one_message_with_a_hint(cluster):
    result = invoke(cluster, "worker", "release", "w1")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: Worker 'w1' is not kept alive"
    assert lines[1].startswith("Hint: Only kept-alive workers can be released")
    assert len(lines) == 2


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
