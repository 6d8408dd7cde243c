"""Start a Dask cluster over SSH, keep it running, and stop all of it.

The order: connect to every host at once (one connection per host); start the
scheduler and, at the same time, every host's worker process, which imports
distributed and then waits on stdin for the scheduler's address; hand them the
address from the scheduler's ``Scheduler at:`` line; the cluster is ready when
every worker has logged ``Registered to:``. Until then, any process that exits
or a timeout fails the start (exit 1) and stops the rest.

Once up, a process that exits is reported with its last lines and the others keep
running. Ctrl-C, SIGTERM or SIGHUP stops the workers, then the scheduler, by
closing their stdin (see :mod:`dask_cli.ssh.remote`); a second Ctrl-C closes the
connections at once, which the remote side treats the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import asyncssh

from dask_cli.ssh.connect import HostConnection, SSHFailure, connect
from dask_cli.ssh.display import Display
from dask_cli.ssh.plan import ClusterPlan, SSHSettings
from dask_cli.ssh.process import RemoteProcess
from dask_cli.ssh.remote import GRACE

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = GRACE + 5.0  # the remote wrapper kills what SIGTERM did not stop by then

T = TypeVar("T")


def _state(factory: Callable[[], Any] = lambda: None) -> Any:
    """A dataclass field that is state, not a parameter: made fresh for each instance
    (``None`` unless ``factory`` says otherwise)."""
    return dataclasses.field(default_factory=factory, init=False, repr=False)


class _Stopped(Exception):
    """Ctrl-C or a signal arrived while we were waiting for something."""


@dataclasses.dataclass(eq=False)
class SSHCluster:
    """One run of ``dask ssh``: :meth:`run` returns when the cluster is stopped.

    ``on_ready(scheduler_address)`` runs once every worker is up (``--name`` uses it
    to register the cluster). The fields after ``startup_timeout`` are the run's state.
    """

    plan: ClusterPlan
    settings: SSHSettings
    display: Display
    log_directory: str | None = None
    on_ready: Callable[[str], None] | None = None
    startup_timeout: float = STARTUP_TIMEOUT
    connections: dict[str, HostConnection] = _state(dict)
    scheduler: RemoteProcess | None = _state()
    workers: list[RemoteProcess] = _state(list)
    scheduler_address: str | None = _state()
    _changed: asyncio.Event = _state(asyncio.Event)
    _stop: asyncio.Event = _state(asyncio.Event)
    _force: asyncio.Event = _state(asyncio.Event)
    _reported: set[str] = _state(set)

    @property
    def processes(self) -> list[RemoteProcess]:
        return [p for p in (self.scheduler, *self.workers) if p is not None]

    async def run(self) -> int:
        """Start, wait for Ctrl-C/SIGTERM, stop. 0 when stopped on request; raises
        :class:`SSHFailure` when start-up fails or every process has exited."""
        self._install_signal_handlers()
        try:
            await self._until_stopped(self._connect())
            await self._until_stopped(self._start())
            await self._until_stopped(self._wait_ready())
            await self._watch()
        except _Stopped:
            pass
        finally:
            await self._shutdown()
            self._remove_signal_handlers()
        if not self._stop.is_set():
            raise SSHFailure("every remote process has exited", hint="See their last lines above.")
        return 0

    # -- signals -----------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self._on_signal)

    def _remove_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)

    def _on_signal(self) -> None:
        if self._stop.is_set():
            self._force.set()
        self._stop.set()
        self._changed.set()

    async def _until_stopped(self, awaitable: Awaitable[T]) -> T:
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise _Stopped
        return task.result()

    # -- start -------------------------------------------------------------------

    async def _connect(self) -> None:
        hosts = self.plan.connection_hosts()
        self.display.progress(f"connecting to {', '.join(hosts)}")
        results = await asyncio.gather(
            *(connect(host, self.settings) for host in hosts), return_exceptions=True
        )
        failures = []
        for host, result in zip(hosts, results, strict=True):
            if isinstance(result, HostConnection):
                self.connections[host] = result
            else:
                failures.append(result)
        if failures:
            self.display.end_progress()
            for extra in failures[1:]:
                if not isinstance(extra, SSHFailure):
                    raise extra
                from dask_cli.output import report_exception

                report_exception(extra)
            raise failures[0]

    async def _start(self) -> None:
        plan = self.plan
        logs = self._log_files()
        self.scheduler = self._process("scheduler", plan.scheduler, plan.scheduler_command(), logs)
        seen: dict[str, int] = {}
        for host in plan.hosts:
            seen[host] = seen.get(host, 0) + 1
            suffix = f"#{seen[host]}" if seen[host] > 1 else ""
            connection = self.connections[host]
            self.workers.append(
                self._process(
                    "worker",
                    host,
                    plan.worker_command(connection.hostname),
                    logs,
                    label=f"worker {host}{suffix}",
                )
            )
        self.display.progress("starting the scheduler and workers")
        await asyncio.gather(*(self._start_process(p) for p in self.processes))

    def _process(
        self,
        role: str,
        host: str,
        command: str,
        logs: Callable[[str], IO[str] | None],
        label: str | None = None,
    ) -> RemoteProcess:
        label = label or f"{role} {host}"
        return RemoteProcess(
            role,
            label,
            self.connections[host],
            command,
            on_line=self._on_line,
            on_change=self._on_change,
            log_file=logs(label),
        )

    async def _start_process(self, process: RemoteProcess) -> None:
        try:
            await process.start()
        except asyncssh.Error as exc:
            raise SSHFailure(
                f"{process.host.host}: cannot start the {process.role}: {exc.reason}",
                hint="The SSH server refused a session (MaxSessions in sshd_config?).",
            ) from None

    def _log_files(self) -> Callable[[str], IO[str] | None]:
        if not self.log_directory:
            return lambda _label: None
        stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        directory = Path(self.log_directory) / f"dask-ssh_{stamp}"
        directory.mkdir(parents=True, exist_ok=True)
        self.display.info(f"output kept in {directory}")

        def open_log(label: str) -> IO[str]:
            name = re.sub(r"[^\w.@#-]+", "-", label)
            return open(directory / f"{name}.log", "a", encoding="utf-8")  # noqa: SIM115

        return open_log

    def _on_line(self, process: RemoteProcess, line: str) -> None:
        self.display.remote_line(process.label, line)

    def _on_change(self, process: RemoteProcess) -> None:
        if process.state.pid is not None and f"pid {process.label}" not in self._reported:
            self._reported.add(f"pid {process.label}")
            self.display.info(f"{process.label} started, pid {process.state.pid}")
        self._changed.set()

    async def _wait_ready(self) -> None:
        expected = self.plan.nworkers
        total = expected * len(self.workers)
        up: set[str] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        while True:
            if self._stop.is_set():
                # asyncio.wait_for (3.11) can swallow a cancellation that arrives as the
                # event it waits for is set, as _on_signal does: do not rely on it.
                raise _Stopped
            for process in self.processes:
                if process.exited.is_set():
                    raise self._startup_failure(process)
            scheduler = self.scheduler.state.scheduler_address
            if scheduler and self.scheduler_address is None:
                self.scheduler_address = scheduler
                self.display.info(f"scheduler up at {scheduler}")
                for worker in self.workers:
                    worker.send(scheduler)
            for worker in self.workers:
                if worker.state.registered >= expected and worker.label not in up:
                    up.add(worker.label)
                    self.display.info(f"{worker.label} up ({len(up)}/{len(self.workers)})")
            registered = sum(min(w.state.registered, expected) for w in self.workers)
            if self.scheduler_address and registered >= total:
                break
            self.display.progress(
                f"scheduler {'up' if self.scheduler_address else 'starting'}, "
                f"workers {registered}/{total} registered"
            )
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._timeout_failure()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        workers = [a for w in self.workers for a in w.state.worker_addresses]
        self.display.ready(self.scheduler_address, workers, len(self.connections))
        if self.on_ready is not None:
            self.on_ready(self.scheduler_address)

    def _startup_failure(self, process: RemoteProcess) -> SSHFailure:
        self.display.end_progress()
        host, python = process.host.host, self.plan.python
        text = "\n".join(process.tail)
        if process.state.pid is None and process.exit_status is not None:
            if re.search(r"No module named '?dask_cli", text):
                return SSHFailure(
                    f"{host}: dask-cli is not installed for {python}",
                    hint=f"Install it there (`{python} -m pip install dask-cli`), or point "
                    "--remote-python at a Python that has it.",
                )
            if process.exit_status in (126, 127) or re.search(
                r"not found|No such file|Permission denied", text
            ):
                return SSHFailure(
                    f"{host}: cannot run {python}: {process.tail[-1] if process.tail else ''}",
                    hint=f"Pass --remote-python with the path of a Python on {host} that "
                    "has dask-cli installed.",
                )
        missing = re.search(r"No module named '([\w.]+)'", text)
        if missing:
            return SSHFailure(
                f"{host}: {python} cannot import {missing.group(1)}",
                hint=f"Install dask-cli and its dependencies there (`{python} -m pip "
                "install dask-cli`), or point --remote-python at a Python that has them.",
            )
        self.display.process_exited(
            process.label, process.describe_exit() + " during start-up", process.tail
        )
        return SSHFailure(f"the {process.label} {process.describe_exit()} during start-up")

    def _timeout_failure(self) -> SSHFailure:
        self.display.end_progress()
        waiting = [
            p
            for p in self.processes
            if (p is self.scheduler and not self.scheduler_address)
            or (p is not self.scheduler and p.state.registered < self.plan.nworkers)
        ]
        for process in waiting:
            self.display.process_exited(process.label, "is not up yet", process.tail)
        names = ", ".join(p.label for p in waiting)
        return SSHFailure(
            f"not ready within {self.startup_timeout:g} s: {names}",
            hint="Their last lines are above; a log level above INFO hides the lines "
            "`dask ssh` waits for ('Scheduler at:', 'Registered to:').",
        )

    # -- running -----------------------------------------------------------------

    async def _watch(self) -> None:
        while not self._stop.is_set():
            for process in self.processes:
                if process.exited.is_set() and process.label not in self._reported:
                    self._reported.add(process.label)
                    self.display.process_exited(
                        process.label, process.describe_exit(), process.tail
                    )
            if all(p.exited.is_set() for p in self.processes):
                return
            self._changed.clear()
            await self._changed.wait()

    # -- stop --------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self.display.end_progress()
        running = [p for p in self.processes if p.running]
        if running:
            self.display.info(f"stopping {len(running)} remote process(es)")
            workers = [p for p in self.workers if p.running]
            for worker in workers:
                worker.stop()
            await self._wait_exited(workers)
            if self.scheduler is not None:
                self.scheduler.stop()
                await self._wait_exited([self.scheduler])
            for process in self.processes:
                process.abort()
        for connection in self.connections.values():
            connection.close()
        for connection in self.connections.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.connection.wait_closed(), 5)
        if running:
            self.display.info("remote processes stopped")

    async def _wait_exited(self, processes: list[RemoteProcess]) -> None:
        """Until ``processes`` have exited, a second Ctrl-C, or :data:`STOP_TIMEOUT`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_TIMEOUT
        while not self._force.is_set() and not all(p.exited.is_set() for p in processes):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)


# ``dask ssh`` options (click's parameter names) whose field in ClusterPlan or
# SSHSettings has another name; every other option has its field's name.
_RENAMED_OPTIONS = {
    "n_workers": "nworkers",
    "ssh_username": "username",
    "ssh_port": "port",
    "ssh_private_key": "private_key",
}


def _take_fields(cls: type[T], options: dict[str, Any], **given: Any) -> T:
    """A ``cls`` dataclass from ``given`` and the options named after its fields; each
    option used is removed from ``options``, so that an option nothing reads shows."""
    names = {f.name for f in dataclasses.fields(cls)}
    for option in [o for o in options if _RENAMED_OPTIONS.get(o, o) in names]:
        given.setdefault(_RENAMED_OPTIONS.get(option, option), options.pop(option))
    return cls(**given)


def plan_from_options(
    hosts: list[str], options: dict[str, Any]
) -> tuple[ClusterPlan, SSHSettings, dict[str, Any]]:
    """The cluster and login settings that ``dask ssh``'s options (click's names) ask
    for, and the options that are neither (``log_directory``, ``name``). Filling the
    dataclasses by field name keeps one list of the options, the command's."""
    rest = dict(options)
    scheduler = rest.pop("scheduler", None) or hosts[0]
    plan = _take_fields(ClusterPlan, rest, hosts=tuple(hosts), scheduler=scheduler)
    settings = _take_fields(SSHSettings, rest)
    return plan, settings, rest


def launch(hosts: list[str], **options: Any) -> int:
    """``dask ssh``'s options to a running cluster; returns the exit code when it stops."""
    plan, settings, rest = plan_from_options(hosts, options)
    log_directory = rest.pop("log_directory", None)
    name = rest.pop("name", None)
    if rest:
        raise TypeError(f"dask ssh options that nothing reads: {', '.join(sorted(rest))}")
    display = Display()
    if settings.insecure:
        display.warning(
            "--insecure: host keys are not checked; anyone on the network path could "
            "pose as these hosts and run your workers."
        )
    registration = contextlib.ExitStack()
    on_ready = None
    if name is not None:
        _check_name_free(name)
        on_ready = functools.partial(_register, registration, name, plan, display)
    cluster = SSHCluster(plan, settings, display, log_directory=log_directory, on_ready=on_ready)
    with registration:  # the record goes when the cluster has stopped
        return asyncio.run(cluster.run())


def _check_name_free(name: str) -> None:
    """Fail before connecting anywhere when ``--name`` is taken (registering, once the
    cluster is up, fails too, should another one take the name meanwhile)."""
    from dask_cli.clusters import cluster_names
    from dask_cli.clusters.state import check_name

    if check_name(name) in cluster_names():
        raise SSHFailure(
            f"a cluster named {name!r} already exists",
            hint=f"Pick another --name, or stop that one first: `dask cluster stop {name}`.",
        )


def _register(
    registration: contextlib.ExitStack,
    name: str,
    plan: ClusterPlan,
    display: Display,
    scheduler_address: str,
) -> None:
    from dask_cli.clusters import registered_cluster

    registration.enter_context(
        registered_cluster(
            name,
            scheduler_address,
            kind="SSHCluster",
            source="dask ssh",
            spec={"hosts": list(plan.hosts), "scheduler": plan.scheduler},
        )
    )
    display.info(
        f"registered as cluster {name!r}: `dask worker list --cluster {name}`, "
        f"`dask cluster stop {name}`"
    )
