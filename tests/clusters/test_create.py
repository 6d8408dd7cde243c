"""`dask cluster create -f SPEC`: any cluster manager class from a dask-ctl style spec."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.clusters.conftest import dask, holder_log, listing

SPEC = """\
version: 1
module: distributed
class: LocalCluster
kwargs:
  n-workers: 1
  threads-per-worker: 2
  host: 127.0.0.1
  dashboard-address: 127.0.0.1:0
  processes: true
"""


async def _terminate(address: str) -> None:
    from distributed.comm.core import CommClosedError
    from distributed.core import rpc

    async with rpc(address, timeout=30) as scheduler:
        with contextlib.suppress(CommClosedError):  # it closes before it answers
            await scheduler.terminate()


@pytest.mark.timeout(300)
def test_create_from_a_spec_file(state_dir, tmp_path, monkeypatch):
    (tmp_path / "dask-cluster.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)  # no -f: ./dask-cluster.yaml, as dask-ctl looked for it
    created = dask("cluster", "create", "spec1", "--keepalive")
    try:
        assert "Cluster 'spec1' is running" in created.stdout
        record = listing("spec1")
        assert (record["status"], record["kind"], record["workers"], record["threads"]) == (
            "running",
            "distributed.LocalCluster",
            1,
            2,
        )
        assert record["source"] == str(tmp_path / "dask-cluster.yaml")
        info = dask("cluster", "info", "spec1")
        assert "threads_per_worker: 2" in info.stdout  # '-' became '_'
        # Workers of created clusters have the shell service too, and --keepalive
        # reached them through the dask config their nannies hand on.
        code = "import dask; print(worker.state.nthreads, dask.config.get('cli.keepalive.enabled'))"
        shell = dask("worker", "shell", "0", "--cluster", "spec1", "-c", code)
        assert shell.stdout.strip() == "2 True"

        # A scheduler shut down from a client takes its holder and record with it.
        asyncio.run(_terminate(record["scheduler_address"]))
        deadline = time.monotonic() + 90
        while (state_dir / "spec1").exists():
            assert time.monotonic() < deadline, "the holder outlived its scheduler"
            time.sleep(0.2)
        assert listing() == []
    except BaseException:
        print(holder_log(state_dir, "spec1"))
        raise


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "spec, message",
    [
        ("version: 2\nmodule: x\nclass: y\n", "unsupported spec version 2"),
        ("version: 1\nclass: y\n", "has no module"),
        ("version: 1\nmodule: [\n", "Cannot read the spec file"),
        ("version: 1\nmodule: no_such_module\nclass: X\n", "No module named 'no_such_module'"),
        (
            "version: 1\nmodule: distributed\nclass: LocalCluster\nkwargs: {bogus: 1}\n",
            "bogus",
        ),
    ],
)
def test_bad_specs_are_one_line(state_dir, tmp_path, spec, message):
    path = tmp_path / "bad.yaml"
    path.write_text(spec)
    result = dask("cluster", "create", "-f", str(path), check=False)
    assert result.returncode == 1, result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(state_dir.iterdir()) == [] if state_dir.exists() else True


def test_missing_spec_file(state_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = dask("cluster", "create", check=False)
    assert result.returncode == 1
    assert "Spec file not found: dask-cluster.yaml" in result.stderr
