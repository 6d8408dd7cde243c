"""`dask scheduler` and `dask worker` start processes exactly as distributed's commands do.

Real processes on 127.0.0.1 (dask_cli.testing), checked through a distributed Client and
their log lines, as distributed's own CLI tests do: popen, SIGINT/SIGTERM, exit codes.
Where distributed's behaviour is the reference, the test runs distributed's own command
(``python -m dask ...``, which has no dask-cli in it) side by side.

One scheduler is shared by the module: every worker test uses its own worker names.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dask_cli.testing import (
    LOCALHOST,
    DaskProcess,
    ProcessCluster,
    dask_command,
    process_cluster,
    run_dask,
    started_processes,
)

NO_SCHEDULER_ENV = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}


def distributed_command(*args: str) -> list[str]:
    """argv of distributed's own ``dask ARGS`` (dask's CLI, without dask-cli)."""
    return [sys.executable, "-m", "dask", *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
        return True


def free_port_pair() -> int:
    """A port p such that p and p + 1 are both free on 127.0.0.1 (for port ranges)."""
    for _ in range(50):
        first = free_port()
        if first < 65535 and port_is_free(first + 1):
            return first
    raise AssertionError("no two consecutive free ports found")


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory) -> Iterator[ProcessCluster]:
    """One `dask scheduler` (with --scheduler-file) for the whole module. Its HTTP server
    (up even with --no-dashboard) goes to a random loopback port, not 0.0.0.0:8787."""
    with process_cluster(
        tmp_path_factory.mktemp("scheduler"),
        workers=(),
        scheduler_args=("--dashboard-address", f"{LOCALHOST}:0"),
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(scheduler: ProcessCluster):
    from distributed import Client

    with Client(scheduler.scheduler_address, timeout="20s") as connected:
        yield connected


@pytest.fixture
def spawn() -> Iterator[Callable[..., DaskProcess]]:
    """Start ``dask ...`` (or any argv) as a DaskProcess; all are stopped after the test.
    Their output goes to captured stderr, which pytest shows when the test failed."""
    with started_processes() as start:

        def start_dask(*args: str, argv: list[str] | None = None, **kwargs: Any) -> DaskProcess:
            return start(argv or dask_command(*args), **kwargs)

        yield start_dask


def wait_for_workers(
    client, names: set[Any], process: DaskProcess, timeout: float = 60
) -> dict[Any, dict]:
    """name -> scheduler's info of that worker (plus its "address"), once all registered;
    fails at once if ``process`` (which starts them) exits."""
    deadline = time.monotonic() + timeout
    while True:
        if not process.alive():
            raise AssertionError(f"exited with {process.proc.returncode}:\n{process.output()}")
        workers = client.scheduler_info()["workers"]
        by_name = {info["name"]: {**info, "address": addr} for addr, info in workers.items()}
        if names <= by_name.keys():
            return {name: by_name[name] for name in names}
        if time.monotonic() > deadline:
            raise AssertionError(f"workers {names - by_name.keys()} did not register")
        time.sleep(0.1)


def wait_until_gone(client, names: set[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while names & {info["name"] for info in client.scheduler_info()["workers"].values()}:
        if time.monotonic() > deadline:
            raise AssertionError(f"workers {names} still registered")
        time.sleep(0.1)


def compute_on(client, address: str) -> int:
    return client.submit(lambda x: x + 1, 41, workers=[address], pure=False).result(timeout=30)


def stop_and_check(process: DaskProcess, signum: int, last_line: str) -> str:
    """Signal ``process``; it must exit 0 with ``last_line`` logged, as distributed's does."""
    process.send_signal(signum)
    assert process.wait(30) == 0, process.output()
    output = process.output()
    assert last_line in output
    assert "kept alive" not in output, "an operator's signal is no failure to keep alive for"
    assert "Traceback" not in output
    return output


def config_in_worker(client, address: str, key: str) -> Any:
    import dask

    return client.run(lambda: dask.config.get(key, default=None), workers=[address])[address]


def write_preloads(directory: Path) -> tuple[str, str]:
    """A plain preload module and a click-configurable one (takes preload argv)."""
    plain = directory / "plain_preload.py"
    plain.write_text(
        textwrap.dedent(
            """
            def dask_setup(server):
                server.dask_cli_test_preload = type(server).__name__
            """
        )
    )
    with_argv = directory / "argv_preload.py"
    with_argv.write_text(
        textwrap.dedent(
            """
            import click

            @click.command()
            @click.option("--greeting", default="none")
            def dask_setup(server, greeting):
                server.dask_cli_test_greeting = greeting
            """
        )
    )
    return str(plain), str(with_argv)


# ---------------------------------------------------------------- workers


@pytest.mark.timeout(60)
def test_scheduler_default_ports(spawn):
    """Without --port/--dashboard-address: 8786 and 8787, as distributed's. First in this
    module: the module's scheduler (like any distributed scheduler, even with
    --no-dashboard) takes 8787 when it is free."""
    if not (port_is_free(8786) and port_is_free(8787)):
        pytest.skip("the default ports 8786/8787 are in use by another program")
    scheduler = spawn("scheduler", "--host", LOCALHOST)
    scheduler.wait_for(r"Scheduler at:\s+tcp://127\.0\.0\.1:8786\b")
    scheduler.wait_for(r"dashboard at:\s+http://127\.0\.0\.1:8787/status")
    stop_and_check(scheduler, signal.SIGINT, "End scheduler")


@pytest.mark.timeout(60)
def test_worker_defaults_as_distributed(scheduler, client, spawn, tmp_path):
    """Nanny on, random worker port, CPU_COUNT threads, 'auto' memory, shell on, keepalive
    off, preloads from config still loaded; the log lines of distributed's command;
    SIGINT ends it with exit code 0."""
    from dask.system import CPU_COUNT
    from distributed.worker_memory import parse_memory_limit

    plain, _ = write_preloads(tmp_path)
    worker = spawn(
        "worker",
        scheduler.scheduler_address,
        "--host",
        LOCALHOST,
        "--name",
        "defaults",
        env={"DASK_DISTRIBUTED__WORKER__PRELOAD": plain},
    )
    worker.wait_for(r"Registered to:\s+" + scheduler.scheduler_address)
    info = wait_for_workers(client, {"defaults"}, worker)["defaults"]
    address = info["address"]

    output = worker.output()
    assert f"Start worker at:      {address}" in output
    assert "Start Nanny at:" in output
    assert info["nanny"], "a nanny is started by default"
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert low <= port_of(address) <= high, "worker port is random (ephemeral) by default"
    assert info["nthreads"] == CPU_COUNT
    assert info["memory_limit"] == parse_memory_limit(
        "auto", CPU_COUNT, logger=__import__("logging").getLogger(__name__)
    )
    assert compute_on(client, address) == 42
    assert config_in_worker(client, address, "cli.shell.enabled") is True
    assert config_in_worker(client, address, "cli.keepalive.enabled") is False
    assert client.run(lambda dask_worker: dask_worker.dask_cli_test_preload)[address] == "Worker"

    stop_and_check(worker, signal.SIGINT, "End worker")
    wait_until_gone(client, {"defaults"})


@pytest.mark.parametrize(
    "modules, argv, configured, expected",
    [
        ((), (), {}, (["dask_cli.debug"], ())),
        (("a",), ("--x", "1"), {}, (["a", "dask_cli.debug"], ("--x", "1"))),
        (("a", "dask_cli.debug"), (), {}, (["a", "dask_cli.debug"], ())),
        ((), (), {"preload": "c"}, (["c", "dask_cli.debug"], ())),
        (
            (),
            (),
            {"preload": ["c", "d"], "preload-argv": [["-v"], []]},
            (["c", "d", "dask_cli.debug"], [["-v"], [], []]),
        ),
        (("a",), (), {"preload": ["c"]}, (["a", "dask_cli.debug"], ())),
    ],
)
def test_add_debug_preload_keeps_configured_preloads(modules, argv, configured, expected):
    """The server reads distributed.worker.preload only when handed no modules: ours must
    not hide it, and per-module argv lists must still line up."""
    import dask

    from dask_cli.commands.debug_options import add_debug_preload

    settings = {f"distributed.worker.{key}": value for key, value in configured.items()}
    with dask.config.set({"distributed.worker.preload": [], **settings}):
        assert add_debug_preload(modules, argv, "distributed.worker") == expected


@pytest.mark.timeout(60)
def test_worker_start_options_take_effect(scheduler, client, spawn, tmp_path):
    """`dask worker start ...` forces starting; options reach the worker process through
    the nanny (config cli.*, preloads, resources, memory limit); SIGTERM exits 0."""
    plain, _ = write_preloads(tmp_path)
    worker = spawn(
        "worker",
        "start",
        scheduler.scheduler_address,
        "--host",
        LOCALHOST,
        "--no-dashboard",
        "--name",
        "opts",
        "--nthreads",
        "2",
        "--memory-limit",
        "1GB",
        "--resources",
        "GPU=2,FOO=1",
        "--preload",
        plain,
        "--no-shell",
        "--keepalive",
        "--keepalive-timeout",
        "10 minutes",
    )
    info = wait_for_workers(client, {"opts"}, worker)["opts"]
    address = info["address"]
    assert info["nanny"]
    assert info["nthreads"] == 2
    assert info["memory_limit"] == 1_000_000_000
    assert info["resources"] == {"GPU": 2, "FOO": 1}
    assert client.run(lambda dask_worker: dask_worker.dask_cli_test_preload)[address] == "Worker"
    assert config_in_worker(client, address, "cli.shell.enabled") is False
    assert config_in_worker(client, address, "cli.keepalive.enabled") is True
    assert config_in_worker(client, address, "cli.keepalive.timeout") == 600  # "10 minutes"
    preloads = client.run(lambda dask_worker: [p.name for p in dask_worker.preloads])[address]
    assert preloads == [plain, "dask_cli.debug"], "user preloads first, ours last"

    stop_and_check(worker, signal.SIGTERM, "End worker")


@pytest.mark.timeout(60)
def test_nworkers_names_and_worker_port_range(scheduler, client, spawn):
    """--nworkers 2 --name multi gives multi-0 and multi-1, each one port of the
    --worker-port range; the scheduler comes from --scheduler-file."""
    first = free_port_pair()
    worker = spawn(
        "worker",
        "--scheduler-file",
        scheduler.scheduler_file,
        "--host",
        LOCALHOST,
        "--no-dashboard",
        "--nworkers",
        "2",
        "--nthreads",
        "1",
        "--memory-limit",
        "0",
        "--name",
        "multi",
        "--worker-port",
        f"{first}:{first + 1}",
    )
    infos = wait_for_workers(client, {"multi-0", "multi-1"}, worker)
    assert sorted(port_of(info["address"]) for info in infos.values()) == [first, first + 1]
    assert all(info["nthreads"] == 1 for info in infos.values())
    stop_and_check(worker, signal.SIGINT, "End worker")
    wait_until_gone(client, {"multi-0", "multi-1"})


@pytest.mark.timeout(60)
def test_no_nanny_scheduler_file_preload_argv(scheduler, client, spawn, tmp_path):
    """--no-nanny, a fixed --worker-port, `--preload mod --greeting hi` (preload argv:
    with distributed's command too, that needs the address as first argument, else
    `--greeting` is taken for it); --keepalive and --shell-port are ours, not preload argv."""
    plain, with_argv = write_preloads(tmp_path)
    port, shell_port = free_port(), free_port()
    worker = spawn(
        "worker",
        scheduler.scheduler_address,
        "--host",
        LOCALHOST,
        "--no-dashboard",
        "--no-nanny",
        "--name",
        "solo",
        "--worker-port",
        str(port),
        "--keepalive",
        "--shell-port",
        str(shell_port),
        "--preload",
        plain,
        "--preload",
        with_argv,
        "--greeting",
        "hi",
    )
    info = wait_for_workers(client, {"solo"}, worker)["solo"]
    address = info["address"]
    assert not info.get("nanny")
    assert address == f"tcp://{LOCALHOST}:{port}"
    assert "Start Nanny at:" not in worker.output()
    assert client.run(lambda dask_worker: dask_worker.dask_cli_test_greeting)[address] == "hi"
    assert client.run(lambda dask_worker: dask_worker.dask_cli_test_preload)[address] == "Worker"
    assert config_in_worker(client, address, "cli.keepalive.enabled") is True
    assert config_in_worker(client, address, "cli.shell.port") == str(shell_port)
    assert compute_on(client, address) == 42
    stop_and_check(worker, signal.SIGINT, "End worker")


@pytest.mark.timeout(60)
def test_lifetime_ends_worker(scheduler, client, spawn):
    worker = spawn(
        "worker",
        scheduler.scheduler_address,
        "--host",
        LOCALHOST,
        "--no-dashboard",
        "--name",
        "short-lived",
        "--lifetime",
        "1s",
    )
    worker.wait_for("Registered to:")
    assert worker.wait(40) == 0, worker.output()
    assert "End worker" in worker.output()
    assert "Reason: worker-lifetime" in worker.output()


@pytest.mark.timeout(60)
def test_death_timeout_as_distributed(spawn):
    """Nothing listens at the address: both commands give up after --death-timeout with
    "Timed out starting worker" and the same non-zero exit code."""
    address = f"tcp://{LOCALHOST}:{free_port()}"
    args = ("worker", address, "--death-timeout", "1", "--host", LOCALHOST, "--no-dashboard")
    ours = spawn(*args)
    theirs = spawn(argv=distributed_command(*args))
    codes = (ours.wait(40), theirs.wait(40))
    assert codes[0] == codes[1] != 0
    for process in (ours, theirs):
        assert "Timed out starting worker" in process.output()
        assert "End worker" in process.output()


@pytest.mark.timeout(30)
def test_worker_without_scheduler_address_is_one_line():
    result = subprocess.run(
        dask_command("worker", "--no-dashboard"),
        capture_output=True,
        text=True,
        env=NO_SCHEDULER_ENV,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Need to provide scheduler address" in result.stderr
    assert "DASK_SCHEDULER_ADDRESS" in result.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args, message",
    [
        (("--nosuch-option",), "No such option"),
        (("stray",), "Got unexpected extra argument"),
        (("--nthreads", "many"), "'many' is not a valid integer"),
    ],
)
def test_usage_errors_as_distributed(args, message):
    """Unknown options are not swallowed without a click-configurable --preload."""
    address = f"tcp://{LOCALHOST}:{free_port()}"
    argv = ("worker", address, *args)
    ours = run_dask(*argv, timeout=30)
    theirs = subprocess.run(distributed_command(*argv), capture_output=True, text=True, timeout=30)
    assert ours.returncode == theirs.returncode == 2
    assert message in ours.stderr
    assert message in theirs.stderr


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_version_as_distributed(command):
    ours = run_dask(command, "--version", timeout=30)
    theirs = subprocess.run(
        distributed_command(command, "--version"), capture_output=True, text=True, timeout=30
    )
    assert ours.returncode == theirs.returncode == 0
    assert ours.stdout.split(",", 1)[1] == theirs.stdout.split(",", 1)[1]
    assert ours.stdout.startswith("dask, version ")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "command, module, ours",
    [
        ("worker", "distributed.cli.dask_worker", ["--shell", "--shell-port", "--keepalive"]),
        ("scheduler", "distributed.cli.dask_scheduler", ["--shell", "--shell-port"]),
    ],
)
def test_start_help_lists_every_distributed_option(command, module, ours):
    import importlib

    import click

    distributed_main = importlib.import_module(module).main
    expected = [
        opt
        for param in distributed_main.params
        if isinstance(param, click.Option)
        for opt in (*param.opts, *param.secondary_opts)
    ]
    assert len(expected) > 10
    result = run_dask(command, "start", "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    missing = [opt for opt in [*expected, *ours] if opt not in result.stdout]
    assert not missing
    if command == "worker":
        assert "--keepalive-timeout" in result.stdout


# ---------------------------------------------------------------- schedulers


@pytest.mark.timeout(60)
def test_scheduler_options_take_effect(spawn, tmp_path):
    """--port, --dashboard-address, --pid-file, --preload, --no-shell; SIGTERM exits 0."""
    from distributed import Client

    plain, _ = write_preloads(tmp_path)
    port, dashboard_port = free_port(), free_port()
    pid_file = tmp_path / "scheduler.pid"
    scheduler = spawn(
        "scheduler",
        "start",
        "--host",
        LOCALHOST,
        "--port",
        str(port),
        "--dashboard-address",
        f"{LOCALHOST}:{dashboard_port}",
        "--pid-file",
        str(pid_file),
        "--preload",
        plain,
        "--no-shell",
    )
    address = f"tcp://{LOCALHOST}:{port}"
    scheduler.wait_for(r"Scheduler at:\s+" + address)
    scheduler.wait_for(rf"dashboard at:\s+http://127\.0\.0\.1:{dashboard_port}/status")
    assert pid_file.read_text() == str(scheduler.pid)
    with Client(address, timeout="20s") as client:
        assert (
            client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.dask_cli_test_preload)
            == "Scheduler"
        )
        assert client.run_on_scheduler(
            lambda dask_scheduler: [p.name for p in dask_scheduler.preloads]
        ) == [plain, "dask_cli.debug"]
        assert (
            client.run_on_scheduler(
                lambda: __import__("dask").config.get("cli.shell.enabled", default=None)
            )
            is False
        )
    stop_and_check(scheduler, signal.SIGTERM, "End scheduler")
    assert not pid_file.exists(), "the pid file is removed at exit, as distributed does"


@pytest.mark.timeout(90)
def test_tls_scheduler_worker_and_client(spawn, tmp_path, tls_files):
    from distributed import Client, Security

    tls = ("--tls-ca-file", tls_files.ca_file, "--tls-cert", tls_files.cert)
    tls = (*tls, "--tls-key", tls_files.key)
    scheduler_file = tmp_path / "tls-scheduler.json"
    scheduler = spawn(
        "scheduler",
        "--host",
        LOCALHOST,
        "--port",
        "0",
        "--no-dashboard",
        "--dashboard-address",
        f"{LOCALHOST}:0",
        "--scheduler-file",
        str(scheduler_file),
        *tls,
    )
    address = scheduler.wait_for(r"Scheduler at:\s+(tls://\S+)").group(1)
    worker = spawn(
        "worker", address, "--host", LOCALHOST, "--no-dashboard", "--name", "tls-w", *tls
    )
    worker.wait_for(r"Start worker at:\s+tls://127\.0\.0\.1:\d+")
    worker.wait_for(r"Registered to:\s+" + address)
    assert json.loads(scheduler_file.read_text())["address"] == address

    security = Security(
        tls_ca_file=tls_files.ca_file,
        tls_client_cert=tls_files.cert,
        tls_client_key=tls_files.key,
        require_encryption=True,
    )
    with Client(address, security=security, timeout="20s") as client:
        info = wait_for_workers(client, {"tls-w"}, worker)["tls-w"]
        assert info["address"].startswith("tls://")
        assert compute_on(client, info["address"]) == 42
    stop_and_check(worker, signal.SIGINT, "End worker")
    stop_and_check(scheduler, signal.SIGINT, "End scheduler")


# ---------------------------------------------------------------- spec and ssh


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", ["spec", "ssh"])
def test_spec_and_ssh_help(command):
    result = run_dask(command, "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    assert f"Usage: dask {command}" in result.stdout


@pytest.mark.timeout(60)
def test_spec_starts_worker(scheduler, client, spawn):
    spec = {
        "cls": "dask.distributed.Worker",
        "opts": {"nthreads": 3, "name": "from-spec", "host": LOCALHOST, "dashboard": False},
    }
    worker = spawn("spec", scheduler.scheduler_address, "--spec", json.dumps(spec))
    info = wait_for_workers(client, {"from-spec"}, worker)["from-spec"]
    assert info["nthreads"] == 3
    assert compute_on(client, info["address"]) == 42
    worker.send_signal(signal.SIGINT)
    assert worker.wait(30) == 0, worker.output()
    wait_until_gone(client, {"from-spec"})
