"""The state directory: atomic records, owner liveness by lock, registered clusters."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from dask_cli.clusters import (
    ClusterExists,
    ClusterNotFound,
    CorruptState,
    registered_cluster,
    scheduler_address_for,
)
from dask_cli.clusters import state as cluster_state
from dask_cli.errors import DaskCliError
from tests.clusters.conftest import dask, listing

pytestmark = pytest.mark.timeout(60)


def test_registered_cluster_is_named_while_its_block_runs(state_dir):
    with registered_cluster("ext", "tcp://127.0.0.1:1", "SSHCluster", "dask ssh") as state:
        assert state.pid == os.getpid()
        assert scheduler_address_for("ext") == "tcp://127.0.0.1:1"
        assert cluster_state.owner_alive("ext")
        assert os.environ[cluster_state.PROCESS_MARKER] == str(state_dir / "ext")
        assert (state_dir / "ext").stat().st_mode & 0o777 == 0o700
        with pytest.raises(ClusterExists, match="already exists"):
            with registered_cluster("ext", "tcp://127.0.0.1:2", "X", "y"):
                pass
        # Another process sees it; nothing answers at that address, so it is unreachable.
        record = listing("ext")
        assert (record["status"], record["kind"], record["source"]) == (
            "unreachable",
            "SSHCluster",
            "dask ssh",
        )
    assert not (state_dir / "ext").exists()
    assert cluster_state.PROCESS_MARKER not in os.environ
    with pytest.raises(ClusterNotFound):
        scheduler_address_for("ext")


def _register_and_die(directory: str) -> None:
    os.environ["DASK_CLI__CLUSTER__STATE_DIR"] = directory
    import dask.config

    dask.config.refresh()
    with registered_cluster("orphan", "tcp://127.0.0.1:1", "SSHCluster", "dask ssh"):
        os._exit(0)  # dies inside the block: nobody removes the record


def test_an_owner_that_died_leaves_a_dead_cluster(state_dir):
    process = multiprocessing.get_context("spawn").Process(
        target=_register_and_die, args=(str(state_dir),)
    )
    process.start()
    process.join(30)
    assert (state_dir / "orphan" / "state.json").exists()
    assert not cluster_state.owner_alive("orphan")
    with pytest.raises(DaskCliError, match="is dead"):
        scheduler_address_for("orphan")
    assert listing("orphan")["status"] == "dead"
    assert "removed its record" in dask("cluster", "stop", "orphan").stdout
    assert cluster_state.names() == []


def test_a_record_is_complete_or_absent(state_dir):
    new = cluster_state.create(cluster_state.ClusterState("a", "k", "s"))
    try:
        assert json.loads((state_dir / "a" / "state.json").read_text())["name"] == "a"
        assert [p.name for p in state_dir.iterdir()] == ["a"]  # no temporary folder left
        with pytest.raises(ClusterExists):
            cluster_state.create(cluster_state.ClusterState("a", "k", "s"))
        assert [p.name for p in state_dir.iterdir()] == ["a"]
    finally:
        new.release()
    (state_dir / "a" / "state.json").write_text('{"version": 99}')
    with pytest.raises(CorruptState, match="unknown state version 99"):
        cluster_state.read("a")


def _complete(words: str, cword: int) -> list[str]:
    from dask_cli.testing import run_dask

    result = run_dask(
        env={"_DASK_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    )
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_cluster_names_complete_on_tab(state_dir):
    with registered_cluster("alpha", "tcp://127.0.0.1:1", "X", "test"):
        with registered_cluster("beta", "tcp://127.0.0.1:1", "X", "test"):
            assert _complete("dask worker list --cluster ", 4) == ["alpha", "beta"]
            assert _complete("dask worker shell --cluster a", 4) == ["alpha"]
            assert _complete("dask cluster stop b", 3) == ["beta"]


@pytest.mark.parametrize(
    "args", [("cluster", "--help"), ("cluster", "start", "--help"), ("cluster", "list", "--help")]
)
def test_help_imports_nothing_heavy(args):
    from dask_cli.testing import probe_imports

    probe = probe_imports(*args)
    assert probe.exit_code == 0
    assert probe.heavy_modules == []
