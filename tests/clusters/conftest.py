"""Named clusters under test: a private state directory, and real `dask cluster` processes."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import pytest

from dask_cli.testing import run_dask


@pytest.fixture
def state_dir(tmp_path, monkeypatch) -> Path:
    """A state directory of the test's own (never the user's), for this process and
    every `dask` it runs; whatever a test leaves running there is killed afterwards."""
    directory = tmp_path / "state"
    monkeypatch.setenv("DASK_CLI__CLUSTER__STATE_DIR", str(directory))
    import dask.config

    dask.config.refresh()
    yield directory
    from dask_cli.clusters.processes import kill_marked

    if directory.is_dir():
        for folder in directory.iterdir():
            kill_marked(folder)
    dask.config.refresh()


def dask(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """Run `dask ARGS` (the env var of `state_dir` is inherited); fail with its output."""
    result = run_dask(*args, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"dask {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def listing(name: str | None = None) -> list[dict] | dict:
    """`dask cluster list --json` from a new process (one record when ``name`` is given)."""
    records = json.loads(dask("cluster", "list", "--json").stdout)
    if name is None:
        return records
    matches = [r for r in records if r["name"] == name]
    assert len(matches) == 1, records
    return matches[0]


def holder_log(state_dir: Path, name: str) -> str:
    with contextlib.suppress(OSError):
        return (state_dir / name / "holder.log").read_text(errors="replace")
    return ""
