"""Driving the compose cluster (the top-level docker-compose.yml) from tests:
``docker-compose``/``docker`` calls, addresses and names, polling.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT = os.environ.get("DASK_CLI_COMPOSE_PROJECT", "dask-cli-it")
SCHEDULER = "tcp://scheduler:8786"
KEEPALIVE_WORKER = "keepalive-worker"
PLAIN_WORKER = "plain-worker"
# The kept-alive worker's shell service, by address (fixed with --shell-port 8790).
KEEPALIVE_SHELL = "tcp://keepalive-worker:8790"
# Static address on the compose network, so a reconnect after `network disconnect`
# gives the worker back the address its listeners are bound to.
KEEPALIVE_IP = "172.28.5.11"
WORKER_NAMES = (KEEPALIVE_WORKER, PLAIN_WORKER)
# docker-compose's environment: the dashboard on a free loopback port unless the
# caller chose one (8787 may be taken by other clusters on this machine).
ENV = {**os.environ, "DASK_CLI_DASHBOARD_PORT": os.environ.get("DASK_CLI_DASHBOARD_PORT", "")}

COUNT_WORKERS = (
    "from distributed import Client\n"
    f"c = Client({SCHEDULER!r}, timeout=10)\n"
    "print('workers:', len(c.scheduler_info()['workers']))\n"
)


class Compose:
    """``docker-compose`` and ``docker`` on this checkout's compose file, one project."""

    def __init__(self, project: str = PROJECT, compose_file: Path = REPO / "docker-compose.yml"):
        self.project = project
        self.started = False  # set once `up` was attempted: logs are worth collecting
        self.base = ["docker-compose", "-p", project, "-f", str(compose_file)]
        # Extra compose files layered on top (e.g. to try a variant of the cluster).
        for extra in os.environ.get("DASK_CLI_COMPOSE_OVERRIDE", "").split(os.pathsep):
            if extra:
                self.base += ["-f", extra]

    def run(
        self,
        *args: str,
        timeout: float = 120,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``docker-compose ARGS``; output captured as text."""
        return _run([*self.base, *args], timeout=timeout, check=check, input=input)

    def exec(
        self,
        service: str,
        *argv: str,
        timeout: float = 60,
        check: bool = False,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in ``service`` without a terminal (``exec -T``)."""
        # A wide terminal for rich's tables, so names are not cut to fit 80 columns.
        return self.run(
            "exec",
            "-T",
            "-e",
            "COLUMNS=200",
            service,
            *argv,
            timeout=timeout,
            check=check,
            input=input,
        )

    def dask(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``dask ARGS`` in the client container."""
        return self.exec("client", "dask", *args, timeout=timeout)

    def python(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Python code in the client container (e.g. a ``Client`` that submits tasks)."""
        return self.exec("client", "python", "-c", code, timeout=timeout)

    def interactive_argv(self, service: str, *argv: str) -> list[str]:
        """argv of ``docker-compose exec`` with a terminal, for pexpect."""
        return [*self.base, "exec", service, *argv]

    def container(self, service: str) -> str:
        """The container id of ``service``."""
        cid = self.run("ps", "-q", service).stdout.strip()
        if not cid:
            raise AssertionError(f"no container for service {service}")
        return cid

    def inspect(self, service: str, template: str) -> str:
        return docker("inspect", "-f", template, self.container(service)).stdout.strip()

    def running(self, service: str) -> bool:
        return self.inspect(service, "{{.State.Running}}") == "true"

    def network(self, service: str) -> str:
        """The compose network ``service`` is attached to."""
        names = self.inspect(service, "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}")
        return names.split()[0] if names else f"{self.project}_dask"

    def disconnect(self, service: str) -> tuple[str, list[str]]:
        """Cut ``service`` off its compose network; returns what ``reconnect`` needs."""
        network = self.network(service)
        aliases = self.inspect(
            service,
            f'{{{{range (index .NetworkSettings.Networks "{network}").Aliases}}}}'
            "{{.}} {{end}}",
        ).split()
        docker("network", "disconnect", network, self.container(service))
        return network, aliases

    def reconnect(self, service: str, network: str, aliases: list[str], ip: str) -> None:
        """Attach ``service`` again with its address and DNS aliases (the service name):
        a plain ``network connect`` would drop them."""
        argv = ["network", "connect", "--ip", ip]
        for alias in aliases:
            argv += ["--alias", alias]
        docker(*argv, network, self.container(service))

    def logs(self, tail: int = 300) -> str:
        """Every container's recent log lines (for failure reports)."""
        try:
            result = self.run("logs", "--no-color", f"--tail={tail}", timeout=60, check=False)
        except Exception as exc:  # the report must not fail because logs could not be read
            return f"(docker-compose logs failed: {exc})"
        return result.stdout + result.stderr


def _run(
    argv: Sequence[str], timeout: float, check: bool, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        cwd=REPO,
        env=ENV,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The ``docker`` client against the same engine."""
    return _run(["docker", *args], timeout=timeout, check=check)


def wait_until(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


COMPOSE = Compose()
