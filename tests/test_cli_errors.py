"""The root command's one error path: one red line with the root cause and a hint,
exit 1; usage errors exit 2 with "Did you mean"; ``--traceback`` / ``cli.traceback``."""

from __future__ import annotations

import socket

import pytest

from dask_cli.testing import LOCALHOST, invoke_dask, run_dask

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("worekr",), "No such command 'worekr'. Did you mean 'worker'?"),
        (("worker", "lsit"), "No such command 'lsit'. Did you mean 'list'?"),
        (("scheduler", "shel"), "No such command 'shel'. Did you mean 'shell'?"),
        (("info", "confg"), "No such command 'confg'. Did you mean 'config'?"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_did_you_mean(args, message):
    result = invoke_dask(*args)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"Error: {message}"


def test_an_address_is_never_taken_for_a_misspelt_subcommand():
    """``dask worker HOST:PORT`` stays distributed's ``dask worker SCHEDULER``."""
    result = invoke_dask("worker", "lsit:8786", "--help")
    assert result.returncode == 0 and "Launch a Dask worker" in result.stdout


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        s.listen(1)
        yield s.getsockname()[1]


def test_root_cause_of_a_failure_is_shown(busy_port):
    args = ["scheduler", "--host", LOCALHOST, "--port", str(busy_port), "--no-dashboard"]
    result = run_dask(*args)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[-2] == "Error: Scheduler failed to start: [Errno 98] Address already in use"
    assert lines[-1].startswith("Hint: Another process uses that port")
    assert "Traceback" not in result.stderr
    for how in (["--traceback", *args], args):
        env = {} if how[0] == "--traceback" else {"DASK_CLI__TRACEBACK": "true"}
        result = run_dask(*how, env=env)
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert "OSError: [Errno 98]" in result.stderr


def test_traceback_setting_is_a_config_key():
    result = run_dask("info", "config", env={"DASK_CLI__TRACEBACK": "true"})
    assert result.returncode == 0
    assert "cli_traceback" not in result.stdout
    assert "traceback: true" in result.stdout
