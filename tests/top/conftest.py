"""Clusters of real ``dask`` processes for the dashboard tests.

``top_cluster`` (shared by the package): workers ``w1`` and ``w2``, and ``kept``, a
``--keepalive`` worker whose lifetime ran out (kept alive, gone from the scheduler,
still listed by the shell plugin's registry).
"""

from __future__ import annotations

import pytest

from dask_cli.testing import DaskProcess, ProcessCluster, process_cluster

KEPT_LINE = r"is kept alive for post-mortem"


def start_kept_alive(cluster: ProcessCluster, name: str) -> DaskProcess:
    """A ``--keepalive`` worker whose 2 s lifetime ran out: kept alive, out of the cluster."""
    process = cluster.start_worker(name, "--keepalive", "--lifetime", "2s", wait=False)
    process.wait_for(KEPT_LINE, 90)
    return process


@pytest.fixture
def kept_alive_worker():
    """``start_kept_alive`` for one test; what the test leaves running is stopped after it,
    so the shared cluster lists the same workers for the next test."""
    started: list[DaskProcess] = []

    def start(cluster: ProcessCluster, name: str) -> DaskProcess:
        started.append(start_kept_alive(cluster, name))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="package")
def top_cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("top-cluster")
    with process_cluster(directory, workers=("w1", "w2")) as cluster:
        start_kept_alive(cluster, "kept")
        yield cluster
