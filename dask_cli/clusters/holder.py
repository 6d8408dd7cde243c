"""The detached process that owns a named cluster's manager object.

``dask cluster start|create`` runs ``python -m dask_cli.clusters.holder DIR LOCK_FD
EVENT_FD`` in a session of its own, so the cluster outlives the command (and its
terminal). The holder builds the cluster manager from the spec in ``DIR/state.json``
(a ``LocalCluster`` for ``start``: the scheduler lives in this process, each worker in a
nanny-managed child process), keeps ``DIR/owner.lock`` locked for its whole life, and
answers control requests (:mod:`dask_cli.clusters.protocol`) on 127.0.0.1.

Why a cluster manager rather than our own ``dask scheduler``/``dask worker``
processes: the manager already knows how to scale. ``SpecCluster.scale`` retires
surplus workers through the scheduler's ``retire_workers`` (their data moves to the
workers that stay) before closing them, and ``close`` shuts the scheduler and every
worker down in order. The same code then runs any manager class from a spec file.
Worker processes exit on their own when the holder dies (distributed's nanny
processes watch their parent), so a ``kill -9`` of the holder takes the cluster down.

Every worker gets the debugging toolkit through dask config: ``dask_cli.debug`` is
appended to the worker, nanny and scheduler preloads, and the nannies hand this
process's dask config (``cli.*`` included) to their workers.

Start-up speed (``dask cluster start NAME --workers 4`` is measured against a plain
``LocalCluster(n_workers=4)``): spawned worker processes would each import
distributed and the toolkit's service (about 0.7 s of CPU each, four at once on a
small machine). Instead worker processes are forked from a ``forkserver`` that has
imported both once (:func:`start_forkserver`), launched first thing, so that its
imports run while this process imports distributed and starts the scheduler. A
``distributed.worker.multiprocessing-method`` the user configured is left alone.
Readiness is pushed: a scheduler plugin wakes the holder when a worker arrives, and
the holder reports READY on the launcher's pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import shutil
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from dask_cli.clusters import protocol
from dask_cli.clusters.spec import ClusterSpec
from dask_cli.clusters.state import load, write

logger = logging.getLogger("dask_cli.clusters.holder")

DEBUG_PRELOAD = "dask_cli.debug"
PRELOAD_SECTIONS = ("distributed.worker", "distributed.nanny", "distributed.scheduler")
# How often the holder checks that its scheduler is still there.
WATCH_INTERVAL = 1.0
DEFAULT_STOP_TIMEOUT = 30.0
MP_METHOD = "distributed.worker.multiprocessing-method"
# What the forkserver imports once for every worker process it forks.
FORKSERVER_PRELOAD = ("distributed", "dask_cli.debug.service.install")
WORKERS_PLUGIN = "dask-cli-holder-workers"


def configure_toolkit(keepalive: bool | None) -> None:
    """Add ``dask_cli.debug`` to the configured preloads and set ``cli.keepalive``."""
    import dask.config

    from dask_cli import config

    config.register_defaults()
    config.register_distributed_defaults()
    settings: dict[str, Any] = {}
    for section in PRELOAD_SECTIONS:
        modules = dask.config.get(f"{section}.preload", default=None) or []
        modules = [modules] if isinstance(modules, str) else list(modules)
        if DEBUG_PRELOAD in modules:
            continue
        argv = dask.config.get(f"{section}.preload-argv", default=None) or []
        if argv and not isinstance(argv[0], str):  # one argv per module: ours takes none
            settings[f"{section}.preload-argv"] = [*argv, []]
        settings[f"{section}.preload"] = [*modules, DEBUG_PRELOAD]
    if keepalive is not None:
        settings["cli.keepalive.enabled"] = keepalive
    dask.config.set(settings)


def start_forkserver() -> bool:
    """Launch the forkserver that worker processes will be forked from (see the module
    docstring); False, and nothing done, when the user chose a multiprocessing method.

    The forkserver keeps the environment it starts with, so the variables a nanny
    would set just before spawning (``distributed.nanny.pre-spawn-environ``, and
    distributed's fixed ``PYTHONHASHSEED`` that keeps hashing the same across
    workers) are set here first, as the nanny itself would set them.
    """
    import multiprocessing
    import multiprocessing.forkserver

    import dask.config

    user_config = dask.config.collect(paths=dask.config.paths, env=os.environ)
    if dask.config.get(MP_METHOD, default=None, config=user_config) is not None:
        return False
    dask.config.set({MP_METHOD: "forkserver"})
    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    environ = {k: os.environ.get(k, str(v)) for k, v in environ.items() if v is not None}
    if environ.get("PYTHONHASHSEED") in (None, "0"):
        environ["PYTHONHASHSEED"] = "6640"  # distributed's Nanny does the same
    os.environ.update(environ)
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(FORKSERVER_PRELOAD))
    multiprocessing.forkserver.ensure_running()
    return True


def _keep_forkserver_preload() -> None:
    """Stop distributed from resetting the preload of a forkserver that already runs.

    On first use of ``forkserver`` it imports numpy, pandas and lz4 into this process
    (when installed) only to name them as preloads: seconds of start-up for a
    forkserver that has started already and would not read them.
    """
    import distributed.utils

    if hasattr(distributed.utils, "_forkserver_preload_set"):
        distributed.utils._forkserver_preload_set = True


async def build_manager(spec: ClusterSpec) -> Any:
    """Import the spec's class and start it in this event loop."""
    import importlib

    module = importlib.import_module(spec.module)
    manager_class = getattr(module, spec.cls)
    manager = manager_class(*spec.args, **spec.kwargs, asynchronous=True)
    if hasattr(manager, "__await__"):
        manager = await manager
    return manager


class ClusterHolder:
    """Owns one cluster manager; see the module docstring."""

    def __init__(self, directory: Path, event_fd: int | None):
        self.directory = directory
        self.event_fd = event_fd
        self.state = load(directory)
        assert self.state.holder is not None, "a holder needs a token"
        self.spec = ClusterSpec.from_dict(self.state.spec)
        self.manager: Any = None
        self.server: Any = None
        self.stopping = asyncio.Event()
        self.stop_timeout = DEFAULT_STOP_TIMEOUT

    # -- start-up events ----------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> None:
        if self.event_fd is None:
            return
        try:
            os.write(self.event_fd, protocol.event(kind, **fields))
        except OSError:  # the launcher went away (Ctrl-C, --no-wait): nobody to tell
            self.close_events()

    def close_events(self) -> None:
        if self.event_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.event_fd)
            self.event_fd = None

    # -- control requests ---------------------------------------------------------

    def _check(self, token: str | None) -> None:
        assert self.state.holder is not None
        if not hmac.compare_digest(str(token or ""), self.state.holder.token):
            raise protocol.Unauthorized("wrong token for this cluster")

    async def handle_info(self, token: str | None = None) -> dict[str, Any]:
        self._check(token)
        return (await self.info()).to_dict()

    async def handle_scale(self, token: str | None = None, n: int = 0) -> dict[str, Any]:
        self._check(token)
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"cannot scale to {n!r} workers")
        await retire_surplus(self.manager, n)
        result = self.manager.scale(n)
        if hasattr(result, "__await__"):
            await result
        logger.info("Scaling to %d workers", n)
        return {"target": n}

    async def handle_stop(self, token: str | None = None, grace: float | None = None) -> dict:
        self._check(token)
        if grace:
            self.stop_timeout = float(grace)
        logger.info("Stop requested (graceful, at most %ss)", self.stop_timeout)
        self.stopping.set()
        return {"stopping": True}

    async def info(self) -> protocol.ClusterInfo:
        identity = await asyncio.wait_for(self.manager.scheduler_comm.identity(), 10)
        spec = getattr(self.manager, "worker_spec", None)
        info = protocol.ClusterInfo.from_identity(
            identity, target=len(spec) if isinstance(spec, dict) else None
        )
        info.dashboard_link = self._dashboard_link()
        return info

    def _dashboard_link(self) -> str | None:
        with contextlib.suppress(Exception):
            return self.manager.dashboard_link or None
        return None

    # -- life cycle -----------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            configure_toolkit(self.state.options.get("keepalive"))
            if start_forkserver():
                _keep_forkserver_preload()
            self.manager = await build_manager(self.spec)
            await self._serve()
        except Exception as exc:
            traceback.print_exc()
            self.emit(protocol.FAILED, error=_one_line(exc))
            await self._close_manager(timeout=10)
            return 1
        self.emit(
            protocol.STARTED,
            scheduler_address=self.state.scheduler_address,
            dashboard_link=self.state.dashboard_link,
        )
        watch = asyncio.ensure_future(self._watch_scheduler())
        if self.spec.workers is not None:
            await self.handle_scale(self.state.holder.token, self.spec.workers)  # type: ignore[union-attr]
            await self._wait_for_workers(self.spec.workers)
        self.emit(protocol.READY)
        self.close_events()
        await self.stopping.wait()
        watch.cancel()
        await self._shutdown()
        return 0

    async def _serve(self) -> None:
        self.server, address = await protocol.serve(
            {
                protocol.INFO: self.handle_info,
                protocol.SCALE: self.handle_scale,
                protocol.STOP: self.handle_stop,
            }
        )
        assert self.state.holder is not None
        self.state.holder.pid = os.getpid()
        self.state.holder.address = address
        self.state.pid = os.getpid()
        self.state.scheduler_address = self.manager.scheduler_address
        self.state.dashboard_link = self._dashboard_link()
        self.state.status = "running"
        write(self.state, self.directory)
        logger.info(
            "Cluster %r: scheduler at %s, control at %s",
            self.state.name,
            self.state.scheduler_address,
            address,
        )

    async def _wait_for_workers(self, n: int) -> None:
        """Until the scheduler has ``n`` workers (or a stop is asked for).

        With the scheduler in this process (``LocalCluster``) a scheduler plugin wakes
        us on every worker that arrives or leaves; a remote scheduler is asked over
        its comm every 50 ms.
        """
        from distributed import Scheduler
        from distributed.diagnostics.plugin import SchedulerPlugin

        scheduler = getattr(self.manager, "scheduler", None)
        if not isinstance(scheduler, Scheduler):
            while not self.stopping.is_set():
                with contextlib.suppress(Exception):
                    if len((await self.info()).workers) == n:
                        return
                await asyncio.sleep(0.05)
            return

        changed = asyncio.Event()

        class WorkersChanged(SchedulerPlugin):
            def add_worker(self, scheduler: Any, worker: str) -> None:
                changed.set()

            def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
                changed.set()

        scheduler.add_plugin(WorkersChanged(), name=WORKERS_PLUGIN)
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            while len(scheduler.workers) != n and not self.stopping.is_set():
                changed.clear()
                arrival = asyncio.ensure_future(changed.wait())
                await asyncio.wait({arrival, stopping}, return_when=asyncio.FIRST_COMPLETED)
                arrival.cancel()
        finally:
            stopping.cancel()
            scheduler.remove_plugin(name=WORKERS_PLUGIN)

    async def _watch_scheduler(self) -> None:
        """Exit when the scheduler is gone (e.g. ``client.shutdown()``): a holder of a
        dead cluster would only mislead ``list``."""
        from distributed.core import Status

        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            scheduler = getattr(self.manager, "scheduler", None)
            status = getattr(scheduler, "status", None) if scheduler is not None else None
            if status in (Status.closing, Status.closed, Status.failed) or getattr(
                self.manager, "status", None
            ) in (Status.closed, Status.failed):
                logger.info("The scheduler closed: stopping the holder")
                self.stopping.set()
                return

    async def _shutdown(self) -> None:
        await self._close_manager(self.stop_timeout)
        await asyncio.get_running_loop().run_in_executor(None, reap_children)
        if self.server is not None:
            self.server.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    async def _close_manager(self, timeout: float) -> None:
        if self.manager is None:
            return
        try:
            await asyncio.wait_for(self.manager.close(), timeout)
        except Exception as exc:  # noqa: BLE001 - a close that fails or hangs ends in a kill
            logger.warning("Closing the cluster failed (%s): killing its processes", exc)
            kill_children()


def workers_scale_drops(manager: Any, n: int) -> list[Any]:
    """The names of running workers that ``SpecCluster.scale(n)`` will close: it drops
    workers not launched yet first, then the newest entries of ``worker_spec``."""
    spec = getattr(manager, "worker_spec", None)
    if not isinstance(spec, dict) or len(spec) <= n:
        return []
    names = list(spec)
    launched = {info.get("name") for info in manager.scheduler_info["workers"].values()}
    for name in [name for name in names if name not in launched]:
        if len(names) <= n:
            break
        names.remove(name)
    return names[n:]


async def retire_surplus(manager: Any, n: int) -> None:
    """Retire (data moved to the workers that stay) the workers that scaling to ``n``
    will close, before the manager closes them.

    ``SpecCluster`` means to do this itself, but hands worker *names* to the
    scheduler's ``retire_workers`` as addresses (``workers=``), which matches no
    worker; the workers are then closed with their data (distributed 2026.8).
    """
    drops = workers_scale_drops(manager, n)
    if drops:
        logger.info("Retiring workers %s", drops)
        await manager.scheduler_comm.retire_workers(names=drops, remove=True)


def reap_children(grace: float = 5.0) -> None:
    """Wait for the processes this one started to exit after a close; kill stragglers."""
    import psutil

    children = psutil.Process().children(recursive=True)
    # multiprocessing's resource tracker and forkserver only exit once we do.
    children = [c for c in children if not _exits_with_us(c)]
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def _exits_with_us(process: Any) -> bool:
    command = " ".join(_cmdline(process))
    return "resource_tracker" in command or "multiprocessing.forkserver" in command


def _cmdline(process: Any) -> list[str]:
    try:
        return process.cmdline()
    except Exception:  # noqa: BLE001 - gone or not ours to read
        return []


def kill_children() -> None:
    """SIGKILL every process this one started (worker processes, ssh clients...)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()


def _one_line(exc: BaseException) -> str:
    """The error and, when it wraps another ("Nanny failed to start"), its root cause."""
    text = _describe(exc)
    root = exc
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    return text if root is exc else f"{text} ({_describe(root)})"


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    directory, lock_fd, event_fd = Path(argv[0]), int(argv[1]), int(argv[2])
    # Keep the lock and the pipe out of every process we start: the lock must be
    # free the moment this process dies, and the launcher must see EOF.
    os.set_inheritable(lock_fd, False)
    os.set_inheritable(event_fd, False)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(name)s - %(message)s")
    holder = ClusterHolder(directory, event_fd)
    return asyncio.run(holder.run())


if __name__ == "__main__":
    sys.exit(main())
