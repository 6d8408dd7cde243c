"""`dask cluster list` asks `dask_cluster_discovery` entry points, and dask-ctl yields `cluster`.

The fixture distributions (``fixtures/site``) are plain ``*.dist-info`` folders put on
PYTHONPATH: a stand-in for dask-ctl (its failing ``cluster`` command and its
``proxycluster`` discovery) and methods that are slow, block their loop, raise, or
do not import.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dask_cli.testing import run_dask

SITE = Path(__file__).parent / "fixtures" / "site"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def env(state_dir, tmp_path) -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")]),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # the entry-point index of plugins.py
        "DASK_CLI__CLUSTER__DISCOVERY_TIMEOUT": "2s",
        "DISCOVERY_TEST_MARKER": str(tmp_path / "instantiated"),
    }


def _warnings(stderr: str) -> list[str]:
    """stderr without the notice about dask-ctl's `cluster` (tested on its own below)."""
    return [
        line for line in stderr.splitlines() if line.strip() and "'cluster' command" not in line
    ]


def test_list_shows_discovered_clusters_and_one_line_per_bad_method(env, tmp_path):
    began = time.monotonic()
    result = run_dask("cluster", "list", "--json", env=env)
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["proxycluster-8786"] == {
        "name": "proxycluster-8786",
        "kind": "fake_dask_ctl.ProxyCluster",
        "source": "proxycluster (dask-ctl)",
        "status": "discovered",
    }
    assert records["slow-but-early"]["source"] == "slow (cluster-discovery-test)"
    assert "slow-never" not in records and "blocking-never" not in records
    assert not (tmp_path / "instantiated").exists(), "list built a cluster manager"

    assert sorted(_warnings(result.stderr)) == [
        "Warning: cluster discovery blocking (cluster-discovery-test) failed: timed out after 2s",
        "Warning: cluster discovery broken (cluster-discovery-test) failed: "
        "RuntimeError: the discovery backend is down",
        "Warning: cluster discovery missing (cluster-discovery-test) failed: "
        "ModuleNotFoundError: No module named 'cluster_discovery_test_gone'",
        "Warning: cluster discovery slow (cluster-discovery-test) failed: timed out after 2s",
    ], result.stderr
    assert elapsed < 30  # one overall timeout, not one per method, and no waiting for a loop


def test_disabled_methods_are_not_asked(env):
    env = {**env, "DASK_CLI__CLUSTER__DISABLE_DISCOVERY": "['slow', 'blocking', 'broken']"}
    result = run_dask("cluster", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert "slow-but-early" not in result.stdout
    assert _warnings(result.stderr) == [
        "Warning: cluster discovery missing (cluster-discovery-test) failed: "
        "ModuleNotFoundError: No module named 'cluster_discovery_test_gone'"
    ]


def test_builtin_cluster_wins_over_dask_ctl_with_a_notice(env):
    result = run_dask("cluster", "--help", env=env)
    assert result.returncode == 0, result.stderr
    assert "start" in result.stdout and "scale" in result.stdout
    assert result.stderr.strip() == (
        "Notice: ignoring the 'cluster' command from the package dask-ctl: "
        "dask-cli has a built-in command of that name."
    )
