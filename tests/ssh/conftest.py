"""A real OpenSSH server on 127.0.0.1 for the whole session, and `dask ssh` runs against it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dask_cli.ssh.testing import SSHD, OpenSSHServer, openssh_server
from dask_cli.testing import DaskProcess, dask_command, started_processes


@pytest.fixture(scope="session")
def sshd(tmp_path_factory) -> OpenSSHServer:
    if not os.access(SSHD, os.X_OK):
        pytest.fail(f"{SSHD} is missing: `./dev unit` installs Debian's openssh-server")
    with openssh_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def python_without_dask(tmp_path_factory) -> str:
    """A Python that has neither dask nor dask-cli: a bare venv of the base interpreter."""
    directory = tmp_path_factory.mktemp("bare-venv")
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True, timeout=60
    )
    return str(Path(directory) / "bin" / "python")


@pytest.fixture
def dask_ssh(sshd):
    """Start `dask ssh ARGS` as a user would, with HOME pointing away from ~/.ssh; its
    output is printed if the test fails, and it is stopped at the end."""
    with started_processes() as start:

        def start_ssh(*args: str, env: dict[str, str] | None = None) -> DaskProcess:
            return start(dask_command("ssh", *args), env={**sshd.env(), **(env or {})})

        yield start_ssh
