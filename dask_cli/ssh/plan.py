"""What runs where: the hosts, the SSH settings, and the command line of every remote
process. Pure data and string building, so it is tested without SSH.

The meaning of every setting is that of distributed's ``dask ssh``: the scheduler
runs on ``scheduler`` (the first host unless given), one ``dask worker`` process
(with ``--nworkers`` worker processes under its nanny) runs on every host in
``hosts``, with ``--host HOST`` unless ``nohost``.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from dataclasses import dataclass

from dask_cli.ssh.remote import SCHEDULER_PLACEHOLDER

DEFAULT_REMOTE_DASK_WORKER = "dask_cli worker"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


@dataclass(frozen=True)
class SSHSettings:
    """How to log in. ``None`` means: what ``~/.ssh/config`` says, else asyncssh's default
    (port 22, the local user name, the default keys and the agent, ``~/.ssh/known_hosts``)."""

    username: str | None = None
    port: int | None = None
    private_key: str | None = None
    known_hosts: str | None = None
    insecure: bool = False  # skip host-key checking


@dataclass(frozen=True)
class ClusterPlan:
    """A cluster as ``dask ssh`` was asked for it."""

    hosts: tuple[str, ...]
    scheduler: str
    scheduler_port: int = 8786
    dashboard_address: str = ":8787"
    nthreads: int = 0
    nworkers: int = 1
    nohost: bool = False
    memory_limit: str | None = "auto"
    worker_port: str | None = None
    nanny_port: str | None = None
    local_directory: str | None = None
    remote_python: str | None = None
    remote_dask_worker: str = DEFAULT_REMOTE_DASK_WORKER
    keepalive: bool = False
    shell_port: str | None = None

    @property
    def python(self) -> str:
        """distributed's default: the same path as this interpreter."""
        return self.remote_python or sys.executable

    def connection_hosts(self) -> list[str]:
        """Every host to connect to, each once, scheduler first."""
        return list(dict.fromkeys([self.scheduler, *self.hosts]))

    def scheduler_command(self, hostname: str | None = None) -> str:
        """The scheduler process; ``hostname`` is its host's real name (``HostName`` in
        ``~/.ssh/config``). A scheduler on a loopback address is reachable only there,
        so it listens only there; elsewhere on every interface, as distributed's does."""
        args = ["--port", str(self.scheduler_port)]
        hostname = hostname or self.scheduler
        if is_loopback(hostname):
            args += ["--host", "::1" if hostname == "::1" else "127.0.0.1"]
        args += ["--dashboard-address", self.dashboard_address]
        return self._remote(["dask_cli", "scheduler", *args])

    def worker_command(self, bind_host: str) -> str:
        """The worker process of one host; ``bind_host`` is the host's real name (its
        ``HostName`` in ``~/.ssh/config``), passed as ``--host`` unless ``nohost``."""
        module_and_args = shlex.split(self.remote_dask_worker)
        args = [SCHEDULER_PLACEHOLDER, "--nthreads", str(self.nthreads)]
        if self.nworkers != 1:
            args += ["--nworkers", str(self.nworkers)]
        if not self.nohost:
            args += ["--host", bind_host]
        if self.memory_limit:
            args += ["--memory-limit", str(self.memory_limit)]
        if self.worker_port:
            args += ["--worker-port", str(self.worker_port)]
        if self.nanny_port:
            args += ["--nanny-port", str(self.nanny_port)]
        if self.local_directory:
            args += ["--local-directory", self.local_directory]
        if self.keepalive:
            args += ["--keepalive"]
        if self.shell_port:
            args += ["--shell-port", str(self.shell_port)]
        return self._remote([*module_and_args, *args], scheduler_from_stdin=True)

    def _remote(self, argv: list[str], scheduler_from_stdin: bool = False) -> str:
        wrapper = [self.python, "-u", "-m", "dask_cli.ssh.remote"]
        if scheduler_from_stdin:
            wrapper.append("--scheduler-from-stdin")
        # `exec`: the wrapper leads the session's process group, which it may kill.
        return "exec " + shlex.join([*wrapper, *argv])


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_hostfile(path: str) -> list[str]:
    """Hosts separated by whitespace, as distributed reads them; ``#`` starts a comment."""
    hosts = []
    with open(path) as file:
        for line in file:
            hosts.extend(line.split("#", 1)[0].split())
    return hosts
