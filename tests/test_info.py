"""`dask info`: versions from metadata, non-default config with secrets masked."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import pytest

from dask_cli import info
from dask_cli.testing import run_dask

pytestmark = pytest.mark.timeout(60)


def _installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def test_mask_secrets_by_key_name_and_in_urls():
    data = {
        "api_token": "t0ken",
        "DB": {"Password": "pw", "host": "db", "nested": {"client-secret": ["a"]}},
        "aws_access_key_id": "AKIA",
        "credentials": {"user": "me"},
        "basic-auth": "x",
        "storage": "s3://alice:hunter2@minio:9000/bucket and https://bob:pw@host/x",
        "urls": ["tcp://sched:8786", "https://carol:s3cret@example/a"],
        "plain": 5,
        "mirror": "https://dave@host/x",
    }
    masked = info.mask_secrets(data)
    assert masked == {
        "api_token": "***",
        "DB": {"Password": "***", "host": "db", "nested": {"client-secret": "***"}},
        "aws_access_key_id": "***",
        "credentials": "***",
        "basic-auth": "***",
        "storage": "s3://alice:***@minio:9000/bucket and https://bob:***@host/x",
        "urls": ["tcp://sched:8786", "https://carol:***@example/a"],
        "plain": 5,
        "mirror": "https://dave@host/x",
    }
    assert data["api_token"] == "t0ken", "the input must not be modified"


def test_config_changes_compares_like_dask():
    defaults = {"a": {"b-c": 1, "d": 2}, "e": "x"}
    config = {"a": {"b_c": 1, "d": 3, "new": True}, "e": "x", "f": None}
    assert info.config_changes(config, defaults) == {"a": {"d": 3, "new": True}, "f": None}
    assert info.config_changes(defaults, defaults) == {}


def test_versions_have_the_keys_of_dasks_own_command():
    """Same keys, order and shape as `python -m dask info versions`, plus dask-cli."""
    theirs = subprocess.run(
        [sys.executable, "-m", "dask", "info", "versions"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert theirs.returncode == 0, theirs.stderr
    expected = json.loads(theirs.stdout)

    result = run_dask("info", "versions")
    assert result.returncode == 0, result.stderr
    ours = json.loads(result.stdout)
    assert list(ours) == [*expected, "dask-cli"]
    assert {key: ours[key] for key in expected} == expected
    assert ours["dask-cli"] == version("dask-cli")


def test_report_masks_secrets_set_through_the_environment():
    env = {
        "DASK_MYSERVICE__API_TOKEN": "tok-3141592",
        "DASK_STORAGE__URL": "s3://alice:hunter2-secret@127.0.0.1:9000/bucket",
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "42s",
    }
    result = run_dask("info", env=env)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    assert "tok-3141592" not in report and "hunter2-secret" not in report
    assert "api_token: '***'" in report
    assert "url: s3://alice:***@127.0.0.1:9000/bucket" in report
    assert "connect: 42s" in report
    assert "DASK_MYSERVICE__API_TOKEN" in report  # the variable's name, not its value
    # Every package of the stack is listed with its metadata version or as missing.
    for name in ("dask", "distributed", "dask-cli", *info.SHOW_VERSIONS_PACKAGES):
        assert f"| {name} | {_installed(name)} |" in report
    assert report.index("## Environment") < report.index("## Versions")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in report


def test_info_config_prints_only_the_config_part():
    result = run_dask("info", "config", env={"DASK_CLI__KEEPALIVE__ENABLED": "true"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("## Configuration that differs from the defaults")
    assert "## Versions" not in result.stdout
    assert "keepalive:\n    enabled: true" in result.stdout
    # distributed's and dask-cli's own defaults are not reported as changes.
    assert "scheduler-address" not in result.stdout and "shell:" not in result.stdout


def test_defaults_include_distributed_and_dask_cli_without_importing_distributed():
    code = (
        "import sys; from dask_cli import info; d = info.default_config(); "
        "print(d['distributed']['comm']['timeouts']['connect'], d['cli']['shell']['enabled'], "
        "'distributed' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["30s", "True", "False"], result.stderr


def test_markdown_config_in_process_handles_any_value_type():
    import dask.config

    with dask.config.set({"myapp.ids": {3}, "myapp.blob": b"raw", "myapp.auth-header": "B x"}):
        text = info.markdown_config()
    assert "ids:\n  - 3" in text
    assert "blob: b'raw'" in text
    assert "auth-header: '***'" in text and "B x" not in text
