"""The nanny's side of ``--keepalive``, and what it keeps when a worker dies anyway.

A kept-alive worker tells its nanny (``dask_cli_keepalive`` handler). From then
on the nanny's memory monitor is stopped (it would terminate the process), and
``Nanny._on_worker_exit`` no longer restarts the worker.

What keepalive cannot keep: a worker process killed by the OS (OOM killer,
SIGKILL) or by the nanny's own memory limit before it was kept alive. For those
the nanny keeps a crash record: exit code or signal, the worker's last log lines
and the Python stacks ``faulthandler`` wrote at the crash (the worker writes both
into a directory the nanny hands it through the ``DASK_CLI_CRASH_DIR``
environment variable). With keepalive on, the nanny does not restart a crashed
worker: it stays up, logs one line, and ``crash`` in a shell session on the
nanny shows the record.
"""

from __future__ import annotations

import collections
import faulthandler
import logging
import logging.handlers
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dask_cli.debug.service import install as install_support

if TYPE_CHECKING:
    from distributed import Nanny

logger = logging.getLogger("distributed.nanny.dask_cli")

CRASH_DIR_ENV = "DASK_CLI_CRASH_DIR"
STACKS_FILE = "faulthandler.txt"
LOG_FILE = "worker.log"
LOG_LINES = 50
ATTRIBUTE = "_dask_cli_nanny"
RELEASE_REASON = "dask-cli-keepalive-released"

_worker_files: list[Any] = []  # keep the faulthandler file open for the process lifetime


# --- inside the worker process -------------------------------------------------


def write_crash_files_from_worker() -> None:
    """In a worker started by our nanny: faulthandler stacks and a log copy into the
    nanny's crash directory (idempotent; no-op without a nanny)."""
    directory = os.environ.get(CRASH_DIR_ENV)
    if not directory or _worker_files or not os.path.isdir(directory):
        return
    stacks = open(os.path.join(directory, STACKS_FILE), "w")  # noqa: SIM115 - lives with the process
    _worker_files.append(stacks)
    faulthandler.enable(file=stacks, all_threads=True)
    # The nanny's memory limit and most operators send SIGTERM: dump stacks, then die.
    faulthandler.register(signal.SIGTERM, file=stacks, all_threads=True, chain=True)
    handler = logging.handlers.RotatingFileHandler(
        os.path.join(directory, LOG_FILE), maxBytes=1_000_000, backupCount=1
    )
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    logging.getLogger("distributed").addHandler(handler)


# --- inside the nanny ------------------------------------------------------------


@dataclass
class CrashRecord:
    """What the nanny knows about a worker process that died."""

    pid: int | None
    exitcode: int | None
    time: float
    killed_by_memory_limit: bool = False
    log: list[str] = field(default_factory=list)
    stacks: str = ""

    @property
    def signal(self) -> str | None:
        if self.exitcode is not None and self.exitcode < 0:
            try:
                return signal.Signals(-self.exitcode).name
            except ValueError:
                return f"signal {-self.exitcode}"
        return None

    def describe(self) -> str:
        how = f"killed by {self.signal}" if self.signal else f"exited with code {self.exitcode}"
        if self.killed_by_memory_limit:
            how += " (the nanny's memory limit)"
        return how

    def __repr__(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.time))
        parts = [f"Worker process {self.pid} {self.describe()} at {when}."]
        parts.append(f"--- last {len(self.log)} log lines ---")
        parts.extend(self.log)
        parts.append("--- Python stacks at the crash (faulthandler) ---")
        parts.append(self.stacks.strip() or "(none written: SIGKILL cannot be caught)")
        return "\n".join(parts)


class NannyKeepalive:
    """Keepalive state of one nanny: installed as ``nanny._dask_cli_nanny``."""

    def __init__(self, nanny: Nanny, enabled: bool):
        self.nanny = nanny
        self.enabled = enabled
        self.worker_kept_alive: dict | None = None
        self.crashes: collections.deque[CrashRecord] = collections.deque(maxlen=10)
        self.crash_dir = tempfile.mkdtemp(prefix="dask-cli-nanny-")
        self._original_on_exit = nanny._on_worker_exit
        self._seen_terminated_pid = -1
        self.service: Any = None

    @property
    def crash(self) -> CrashRecord | None:
        return self.crashes[-1] if self.crashes else None

    def handle_keepalive(self, enabled: bool, kept_alive: dict | None = None) -> str:
        """Handler: the worker's keepalive switch changed, or it was kept alive."""
        self.enabled = bool(enabled)
        if kept_alive is not None:
            self.worker_kept_alive = kept_alive
            monitor = self.nanny.periodic_callbacks.get("memory_monitor")
            if monitor is not None:
                monitor.stop()
        return "OK"

    async def on_worker_exit(self, exitcode: int) -> None:
        """``Nanny._on_worker_exit`` with keepalive: no restart of a kept-alive or crashed
        worker."""
        from distributed.core import Status

        nanny = self.nanny
        if nanny.status != Status.running:  # the nanny itself is closing: as distributed
            return await self._original_on_exit(exitcode)
        if self.worker_kept_alive is not None and exitcode == 0:
            # Released (or closed by an operator's request): the nanny goes too.
            await nanny.close(reason=RELEASE_REASON)
            return None
        if exitcode == 0 or not (self.enabled or self.worker_kept_alive):
            if exitcode != 0:
                self.record_crash(exitcode)
            return await self._original_on_exit(exitcode)
        record = self.record_crash(exitcode)
        logger.warning(
            "Worker %r process %s: kept the nanny for post-mortem (no restart). Inspect "
            "with: dask worker shell %s   (the `crash` variable shows exit status, last log "
            "lines and stacks)",
            nanny.name,
            record.describe(),
            install_support.shell_address(nanny),
        )
        await self._publish_crash(record)
        try:
            await nanny._unregister()
        except Exception:
            logger.debug("Could not unregister the crashed worker", exc_info=True)
        return None

    async def _publish_crash(self, record: CrashRecord) -> None:
        """Point the scheduler's record of this worker at the nanny's shell, so that
        ``dask worker shell NAME`` still finds something to inspect."""
        import asyncio

        from dask_cli.debug import protocol

        nanny = self.nanny
        address = getattr(nanny.process, "worker_address", None) if nanny.process else None
        if not address or self.service is None:
            return
        keys = [protocol.METADATA_KEY, "workers", address]
        try:
            found = await asyncio.wait_for(nanny.scheduler.get_metadata(keys=keys, default=None), 3)
            value = dict(found or {})
            value.update(
                name=str(nanny.name),
                address=address,
                shell_address=self.service.address,
                status="kept-alive",
                kept_alive_reason=f"worker process {record.describe()}; the nanny keeps `crash`",
                kept_alive_since=record.time,
            )
            await asyncio.wait_for(nanny.scheduler.set_metadata(keys=keys, value=value), 3)
        except Exception as exc:
            logger.debug("Crash record not published to the scheduler: %r", exc)

    async def release(self) -> None:
        """``dask worker release`` on a nanny kept up after a crash: it exits now."""
        logger.info("Nanny %r released after the crash of its worker", self.nanny.name)
        await self.nanny.close(reason=RELEASE_REASON)

    def record_crash(self, exitcode: int | None) -> CrashRecord:
        nanny = self.nanny
        process = getattr(nanny.process, "process", None) if nanny.process else None
        pid = getattr(process, "pid", None)
        terminated = getattr(nanny.memory_manager, "_last_terminated_pid", -1)
        killed = terminated not in (-1, self._seen_terminated_pid)
        self._seen_terminated_pid = terminated
        record = CrashRecord(
            pid=pid if pid is not None else (terminated if killed else None),
            exitcode=exitcode,
            time=time.time(),
            killed_by_memory_limit=killed,
            log=_tail(Path(self.crash_dir, LOG_FILE), LOG_LINES),
            stacks=_read(Path(self.crash_dir, STACKS_FILE)),
        )
        self.crashes.append(record)
        return record

    def cleanup(self) -> None:
        shutil.rmtree(self.crash_dir, ignore_errors=True)


def _tail(path: Path, n: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return []


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def get(nanny: Nanny) -> NannyKeepalive | None:
    return getattr(nanny, ATTRIBUTE, None)


def install(nanny: Nanny) -> None:
    """Called from the nanny's preload (before it starts its worker): hand the worker a
    crash directory, listen for its keepalive state, guard restarts (idempotent)."""
    import weakref

    from dask_cli import config
    from dask_cli.debug.service.keepalive import NANNY_HANDLER

    if get(nanny) is not None:
        return
    state = NannyKeepalive(nanny, enabled=bool(config.get("keepalive.enabled", False)))
    setattr(nanny, ATTRIBUTE, state)
    nanny.env[CRASH_DIR_ENV] = state.crash_dir
    nanny.handlers[NANNY_HANDLER] = state.handle_keepalive
    nanny._on_worker_exit = state.on_worker_exit  # type: ignore[method-assign]
    weakref.finalize(nanny, shutil.rmtree, state.crash_dir, True)
    state.service = _start_shell(nanny)


def _start_shell(nanny: Nanny) -> Any:
    """A shell service on the nanny too (the shell engineer's server), so a crash
    record can be inspected after the worker process is gone."""
    from dask_cli.debug import protocol

    try:
        from dask_cli.debug.service.server import ShellService, shell_enabled

        if not shell_enabled(nanny):
            return None
        service = ShellService(nanny, "worker")
        import dask.config

        # --shell-port belongs to the worker process: the nanny starts first and
        # would take it, so the nanny's own shell listens on a random port.
        with dask.config.set({"cli.shell.port": 0}):
            address = service.start()
    except Exception:
        logger.warning("dask-cli: no shell service on the nanny", exc_info=True)
        return None
    nanny.dask_cli_shell = service  # type: ignore[attr-defined]
    nanny.handlers[protocol.SHELL_ADDRESS_HANDLER] = lambda **_: address
    logging.getLogger("distributed.nanny").info("       Nanny shell at: %26s", address)
    return service


def shell_helpers(nanny: Any, session: Any = None) -> dict[str, Any]:
    """Names for a shell session on the nanny: ``crash`` (the last record), ``crashes``."""
    state = get(nanny)
    if state is None:
        return {}
    return {"crash": state.crash, "crashes": list(state.crashes), "nanny": nanny}
