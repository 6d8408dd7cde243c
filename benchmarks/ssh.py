"""``dask ssh`` to 127.0.0.1: time until a scheduler and two workers are ready, against
distributed's ``SSHCluster`` on the same host and the same OpenSSH server.

Both are whole processes started the way a user starts them, timed from launch until
the cluster is ready: ours until ``dask ssh`` prints its ``Scheduler at`` line (which
it prints once both workers have registered), the anchor until a fresh Python that
makes ``SSHCluster(["127.0.0.1"] * 3, ...)`` (the scheduler on the first host, one
worker on each of the others) and ``Client(cluster).wait_for_workers(2)`` prints
READY. Same options on both sides: scheduler and workers bound to 127.0.0.1, one
thread, no memory limit, nannies. Runs alternate. Target: at most 1.0x.

A second row, held to the same target, compares ours with the anchor's time from the
``SSHCluster(...)`` call on, i.e. without the anchor's local ``import distributed``
(a Python session that already has it loaded); ``dask ssh`` never imports
distributed locally.

The sshd comes from :mod:`dask_cli.ssh.testing` (``openssh-server`` must be
installed; ``./dev`` does it).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import time

from benchmarks import Result, Settings
from benchmarks.startup import dask_cli_argv

TARGET = 1.0
TIMEOUT = 120.0

ANCHOR = """\
import sys, time
from distributed import Client, SSHCluster
port, key, known_hosts, python = sys.argv[1:5]
start = time.perf_counter()
cluster = SSHCluster(
    ["127.0.0.1"] * 3,
    connect_options={"port": int(port), "client_keys": [key], "known_hosts": known_hosts},
    scheduler_options={"port": 0, "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
    worker_options={"nthreads": 1, "memory_limit": 0, "host": "127.0.0.1"},
    remote_python=python,
)
client = Client(cluster)
client.wait_for_workers(2, timeout=60)
print(f"READY {time.perf_counter() - start}", flush=True)
client.close()
cluster.close()
"""


def _time_until(argv: list[str], env: dict[str, str], pattern: str, stop: bool) -> tuple:
    """Seconds from launch until a stdout line matches ``pattern``, and the match."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(pattern, line)
            if match:
                elapsed = time.perf_counter() - start
                break
            if time.perf_counter() - start > TIMEOUT:
                raise RuntimeError(f"{argv[:3]}: not ready within {TIMEOUT:g} s")
        else:
            raise RuntimeError(f"{argv[:3]} exited {proc.wait()} before it was ready")
        if stop:
            proc.send_signal(signal.SIGINT)
        for _ in proc.stdout:  # drain until it has stopped its remote processes
            pass
        proc.wait(60)
        return elapsed, match
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def ssh_cluster_ready(settings: Settings) -> list[Result]:
    from dask_cli.ssh.testing import openssh_server

    names = (
        "dask ssh: scheduler + 2 workers ready vs SSHCluster (processes)",
        "dask ssh (process) vs SSHCluster(...) call, distributed already imported",
    )
    try:
        server_context = openssh_server()
        server = server_context.__enter__()
    except RuntimeError as exc:
        return [Result.failed(name, TARGET, str(exc)) for name in names]
    try:
        ours_argv = [
            *dask_cli_argv(), "ssh", "127.0.0.1", "127.0.0.1", *server.client_args(),
            "--scheduler-port", "0", "--dashboard-address", "127.0.0.1:0",
            "--nthreads", "1", "--memory-limit", "0", "--remote-python", sys.executable,
        ]  # fmt: skip
        anchor_argv = [
            sys.executable, "-c", ANCHOR, str(server.port), str(server.user_key),
            str(server.known_hosts), sys.executable,
        ]  # fmt: skip
        env = server.env()
        ours, anchor, anchor_call = [], [], []
        for _ in range(settings.repeats if not settings.quick else 5):
            ours.append(_time_until(ours_argv, env, r"^Scheduler at tcp://", stop=True)[0])
            elapsed, match = _time_until(anchor_argv, env, r"^READY (\S+)", stop=False)
            anchor.append(elapsed)
            anchor_call.append(float(match.group(1)))
    finally:
        server_context.__exit__(None, None, None)
    ours_median = statistics.median(ours)
    return [
        Result(names[0], ours_median, statistics.median(anchor), TARGET),
        Result(names[1], ours_median, statistics.median(anchor_call), TARGET),
    ]


BENCHMARKS = [ssh_cluster_ready]
