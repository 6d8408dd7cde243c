"""The fault suite's cluster and its check: after every fault, a fresh session answers.

One cluster of real processes serves the whole suite (a scheduler, a worker ``f1``
that takes the faults, and a ``--keepalive`` worker ``ka`` made kept-alive once, for
the fuzzing): starting processes per repetition would cost more than the faults.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_checks import FaultTarget

from dask_cli.testing import ProcessCluster, process_cluster

DEBUG = Path(__file__).resolve().parents[2] / "debug"


def _shell_address(cluster: ProcessCluster, name: str) -> str:
    from dask_cli.debug.client.resolve import resolve_worker
    from dask_cli.debug.client.settings import ClientSettings

    settings = ClientSettings(scheduler=cluster.scheduler_address)
    record = asyncio.run(resolve_worker(settings, name))
    assert record.shell_address
    return record.shell_address


@pytest.fixture(scope="session")
def fault_cluster(tmp_path_factory) -> Iterator[ProcessCluster]:
    directory = tmp_path_factory.mktemp("faults")
    with process_cluster(directory, workers=()) as cluster:
        cluster.start_worker("f1", wait=False)
        cluster.start_worker("ka", "--keepalive", "--no-nanny", wait=False)
        for process in cluster.workers.values():
            process.wait_for(r"Registered to:", 60)
        yield cluster


@pytest.fixture(scope="session")
def target(fault_cluster) -> FaultTarget:
    return FaultTarget("f1", _shell_address(fault_cluster, "f1"), fault_cluster)


@pytest.fixture(scope="session")
def kept_alive(fault_cluster) -> FaultTarget:
    """``ka`` after an internal error kept it alive (debug/internal_error.py)."""
    done = subprocess.run(
        [
            sys.executable,
            str(DEBUG / "internal_error.py"),
            "--scheduler",
            fault_cluster.scheduler_address,
            "--worker",
            "ka",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    fault_cluster.workers["ka"].wait_for(r"is kept alive for post-mortem", 30)
    return FaultTarget("ka", _shell_address(fault_cluster, "ka"), fault_cluster)
