"""A real OpenSSH server on 127.0.0.1 for tests and benchmarks of ``dask ssh``.

:func:`openssh_server` generates a host key and a user key in a temporary
directory, writes an ``sshd_config`` (127.0.0.1 only, a free port, keys only,
``AuthorizedKeysFile`` in that directory) and runs ``/usr/sbin/sshd -D -e``. It
also writes a ``known_hosts`` file and a home directory whose ``.ssh/config`` has
one ``Host`` alias (:data:`ALIAS`) for the server, so that callers never read or
touch the real ``~/.ssh``: run ``dask ssh`` with :meth:`OpenSSHServer.env` (``HOME``
set to that directory).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself: it needs an absolute path
ALIAS = "daskbox"  # a Host entry in the client HOME's ~/.ssh/config for this server


@dataclass
class OpenSSHServer:
    """A running sshd; every path lives under ``directory``."""

    directory: Path
    port: int
    proc: subprocess.Popen
    user_key: Path
    other_key: Path  # a key sshd does not accept
    known_hosts: Path  # holds this server's host key for 127.0.0.1 and localhost
    home: Path  # HOME for clients: .ssh/config with ALIAS, no keys, no known_hosts

    def env(self) -> dict[str, str]:
        """Environment overrides for a client process: ``HOME`` is :attr:`home` (its
        ``.ssh/config``, never the real one), and no ssh-agent."""
        return {"HOME": str(self.home), "SSH_AUTH_SOCK": ""}

    def client_args(self) -> list[str]:
        """The ``dask ssh`` options that reach this server with the user key."""
        return [
            "--ssh-port",
            str(self.port),
            "--ssh-private-key",
            str(self.user_key),
            "--known-hosts",
            str(self.known_hosts),
        ]

    def log(self) -> str:
        return (self.directory / "sshd.log").read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_key(path: Path) -> str:
    """A new ed25519 private key at ``path``; returns its public key line."""
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519", comment=path.name)
    key.write_private_key(str(path))
    path.chmod(0o600)
    public = key.export_public_key().decode().strip()
    path.with_suffix(".pub").write_text(public + "\n")
    return public


def _config(directory: Path, port: int, host_key: Path) -> str:
    return "\n".join(
        [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {directory / 'sshd.pid'}",
            f"AuthorizedKeysFile {directory / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",  # the temporary directory's modes are not ours to fix
            "MaxSessions 64",
            "MaxStartups 64",
            "LogLevel VERBOSE",
            "",
        ]
    )


@contextlib.contextmanager
def openssh_server(
    directory: str | Path | None = None, timeout: float = 15
) -> Iterator[OpenSSHServer]:
    """Run sshd on 127.0.0.1 for the duration of the block; stop it afterwards."""
    if not os.access(SSHD, os.X_OK):
        raise RuntimeError(f"{SSHD} is missing: install Debian's openssh-server (./dev does)")
    own_directory = directory is None
    directory = Path(tempfile.mkdtemp(prefix="dask-cli-sshd-") if own_directory else directory)
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # sshd's privilege separation dir (as root)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)

    host_key = directory / "host_key"
    host_public = _write_key(host_key)
    user_key = directory / "user_key"
    (directory / "authorized_keys").write_text(_write_key(user_key) + "\n")
    other_key = directory / "other_key"
    _write_key(other_key)
    home = directory / "home"
    (home / ".ssh").mkdir(parents=True)

    proc = None
    try:
        for _attempt in range(5):  # the free port may be taken before sshd binds it
            port = _free_port()
            config = directory / "sshd_config"
            config.write_text(_config(directory, port, host_key))
            log = open(directory / "sshd.log", "wb")  # noqa: SIM115 - sshd owns it
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            log.close()
            if _wait_listening(proc, directory / "sshd.log", port, timeout):
                break
            _stop(proc)
            proc = None
        if proc is None:
            raise RuntimeError(
                f"sshd did not start:\n{(directory / 'sshd.log').read_text(errors='replace')}"
            )
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(
            f"[127.0.0.1]:{port} {host_public}\n[localhost]:{port} {host_public}\n"
        )
        (home / ".ssh" / "config").write_text(
            f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
            f"  IdentityFile {user_key}\n  UserKnownHostsFile {known_hosts}\n"
        )
        yield OpenSSHServer(directory, port, proc, user_key, other_key, known_hosts, home)
    finally:
        if proc is not None:
            _stop(proc)
        if own_directory:
            shutil.rmtree(directory, ignore_errors=True)


def _wait_listening(proc: subprocess.Popen, log: Path, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    pattern = re.compile(rf"Server listening on 127\.0\.0\.1 port {port}\b")
    while time.monotonic() < deadline:
        if pattern.search(log.read_text(errors="replace")):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def _stop(proc: subprocess.Popen) -> None:
    # sshd's per-connection children are in its session; stop them with it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(5)
