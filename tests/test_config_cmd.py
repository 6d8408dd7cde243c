"""`dask config get|set|list|find`: dask's commands, with distributed's and our defaults."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from dask_cli.testing import run_dask

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def config_dir(tmp_path) -> dict[str, str]:
    """An empty dask config directory, so the user's files do not leak in."""
    return {"DASK_CONFIG": str(tmp_path / "dask-config")}


def test_get_sees_distributed_defaults_without_importing_distributed():
    code = (
        "import sys\nfrom dask_cli.cli import main\n"
        "try:\n    main(['config', 'get', 'distributed.comm.timeouts.connect'])\n"
        "except SystemExit as exc:\n    print('exit', exc.code)\n"
        "print('distributed imported:', 'distributed' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines() == ["30s", "exit 0", "distributed imported: False"], (
        result.stderr
    )


def test_get_sees_dask_cli_defaults_and_sections():
    assert run_dask("config", "get", "cli.shell.port").stdout == "0\n"
    section = run_dask("config", "get", "cli.keepalive")
    assert yaml.safe_load(section.stdout) == {"enabled": False, "timeout": None}


def test_get_missing_key_is_red_section_not_found():
    result = run_dask("config", "get", "no.such.key")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "Section not found: no.such.key"


def test_set_then_get_and_find(config_dir, tmp_path):
    result = run_dask("config", "set", "distributed.worker.daemon", "false", env=config_dir)
    assert result.returncode == 0, result.stderr
    assert "Updated [distributed.worker.daemon] to [False]" in result.stdout
    saved = tmp_path / "dask-config" / "dask.yaml"
    assert yaml.safe_load(saved.read_text()) == {"distributed": {"worker": {"daemon": False}}}

    assert run_dask("config", "get", "distributed.worker.daemon", env=config_dir).stdout == (
        "False\n"
    )
    found = run_dask("config", "find", "distributed.worker.daemon", env=config_dir)
    assert found.returncode == 0
    assert "Found [distributed.worker.daemon]" in found.stdout and str(saved) in found.stdout


def test_list_includes_every_section(config_dir):
    result = run_dask("config", "list", env=config_dir)
    assert result.returncode == 0, result.stderr
    listed = yaml.safe_load(result.stdout)
    assert {"distributed", "cli", "array", "dataframe"} <= set(listed)
