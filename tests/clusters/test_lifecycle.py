"""A named cluster's whole life, each step from a new process: start, list, use, scale, stop."""

from __future__ import annotations

import json
import os

import psutil
import pytest

from dask_cli.clusters.processes import marked_processes
from tests.clusters.conftest import dask, holder_log, listing


@pytest.mark.timeout(300)
def test_start_use_scale_stop(state_dir):
    started = dask("cluster", "start", "life", "--workers", "2", "--nthreads", "1")
    try:
        assert "Cluster 'life' is running: scheduler at tcp://127.0.0.1:" in started.stdout
        assert "2 workers" in started.stdout
        folder = state_dir / "life"
        assert folder.stat().st_mode & 0o777 == 0o700
        assert (folder / "state.json").stat().st_mode & 0o777 == 0o600

        # The command returned; the cluster lives on, and a new process sees it.
        record = listing("life")
        assert record["status"] == "running", record
        assert record["kind"] == "distributed.LocalCluster"
        assert (record["workers"], record["threads"]) == (2, 2)
        address = record["scheduler_address"]

        from distributed import Client

        client = Client(address, timeout=30)
        try:
            assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
            pids = set(client.run(os.getpid).values())
            assert len(pids) == 2
            # One piece of data on each worker: scaling down must move it, not lose it.
            data = [client.scatter(i, workers=[w]) for i, w in enumerate(client.run(os.getpid))]

            # The shell service is in every worker, reached by the cluster's name.
            code = "print('in', worker.name)"
            shell = dask("worker", "shell", "0", "--cluster", "life", "-c", code)
            assert shell.stdout.strip() == "in 0"
            workers = json.loads(dask("worker", "list", "--cluster", "life", "--json").stdout)
            assert sorted(w["name"] for w in workers) == ["0", "1"]

            up = dask("cluster", "scale", "life", "4")
            assert "Cluster 'life': 4 workers" in up.stdout
            assert len(client.scheduler_info(n_workers=-1)["workers"]) == 4
            down = dask("cluster", "scale", "life", "1")
            assert "Cluster 'life': 1 workers" in down.stdout
            assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1
            assert client.gather(data) == [0, 1]
            pids |= set(client.run(os.getpid).values())
        finally:
            client.close()

        holder = json.loads((folder / "state.json").read_text())["holder"]["pid"]
        stopped = dask("cluster", "stop", "life")
        assert "Stopped cluster 'life'." in stopped.stdout, stopped.stdout
        assert not folder.exists()
        assert not psutil.pid_exists(holder)
        assert not [p for p in pids if psutil.pid_exists(p)]
        assert marked_processes(folder) == []
        assert listing() == []
    except BaseException:
        print(holder_log(state_dir, "life"))
        raise
