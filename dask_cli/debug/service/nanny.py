"""The nanny's side of ``--keepalive``, and what it keeps when a worker dies anyway.

Installed as a distributed ``NannyPlugin`` (:class:`NannyKeepalive`), which is
also the nanny's shell feature (``crash``/``crashes`` in a session, ``release``,
the record's keep-alive fields). A kept-alive worker tells its nanny
(``protocol.NANNY_KEEPALIVE_HANDLER``). From then on the nanny's memory monitor
is stopped (it would terminate the process), and the nanny no longer restarts
the worker: distributed has no hook for that decision, so the plugin wraps
``Nanny._on_worker_exit`` while it is set up.

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

from distributed.diagnostics.plugin import NannyPlugin

from dask_cli.debug import protocol
from dask_cli.debug.service import features
from dask_cli.debug.service.plugin import publish_record
from dask_cli.debug.service.server import shell_address, target_info

if TYPE_CHECKING:
    from distributed import Nanny

    from dask_cli.debug.service.session import ShellSession

logger = logging.getLogger("distributed.nanny.dask_cli")

CRASH_DIR_ENV = "DASK_CLI_CRASH_DIR"
STACKS_FILE = "faulthandler.txt"
LOG_FILE = "worker.log"
LOG_LINES = 50
# Let the shell answer a ``release`` before the nanny goes.
RELEASE_DELAY = 0.2

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


class NannyKeepalive(NannyPlugin, features.ShellFeature):
    """Keepalive state and crash records of one nanny: its ``NannyPlugin`` and its
    shell feature at once (``nanny.plugins[NannyKeepalive.name]``)."""

    name = "dask-cli-keepalive"
    idempotent = True

    def __init__(self) -> None:
        self.nanny: Any = None
        self.enabled = False
        self.worker_kept_alive: dict | None = None
        self.crashes: collections.deque[CrashRecord] = collections.deque(maxlen=10)
        self.crash_dir: str | None = None
        self._original_on_exit: Any = None
        self._seen_terminated_pid = -1

    # --- NannyPlugin ------------------------------------------------------------

    def setup(self, nanny: Nanny) -> None:
        """Before the nanny starts its worker: hand the worker a crash directory,
        listen for its keepalive state, guard restarts."""
        import weakref

        from dask_cli import config

        if self.nanny is not None:
            return
        self.nanny = nanny
        self.enabled = bool(config.get("keepalive.enabled", False))
        self.crash_dir = tempfile.mkdtemp(prefix="dask-cli-nanny-")
        weakref.finalize(nanny, shutil.rmtree, self.crash_dir, True)
        nanny.env[CRASH_DIR_ENV] = self.crash_dir
        self._original_on_exit = nanny._on_worker_exit
        nanny._on_worker_exit = self.on_worker_exit  # type: ignore[method-assign]
        features.register(nanny, self)

    def teardown(self, nanny: Nanny) -> None:
        if self.nanny is None:
            return
        nanny._on_worker_exit = self._original_on_exit  # type: ignore[method-assign]
        features.unregister(nanny, self.name)
        if self.crash_dir is not None:
            shutil.rmtree(self.crash_dir, ignore_errors=True)

    # --- ShellFeature -----------------------------------------------------------

    def requests(self) -> dict[type[protocol.Request], features.RequestHandler]:
        return {protocol.Release: self._release}

    def helpers(self) -> dict[str, features.HelperFactory]:
        return {"crash": lambda session: self.crash, "crashes": lambda session: list(self.crashes)}

    def record_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"keepalive": self.enabled}
        crash = self.crash
        if crash is not None:
            fields.update(
                status=protocol.KEPT_ALIVE,
                kept_alive_reason=f"worker process {crash.describe()}; see `crash`",
                kept_alive_since=crash.time,
            )
        return fields

    def handlers(self) -> dict[str, Any]:
        return {protocol.NANNY_KEEPALIVE_HANDLER: self.handle_keepalive}

    # --- the nanny's side of keepalive -----------------------------------------

    @property
    def crash(self) -> CrashRecord | None:
        return self.crashes[-1] if self.crashes else None

    def handle_keepalive(self, **msg: Any) -> str:
        """Handler (``protocol.NannyKeepalive``): the worker's keepalive switch changed,
        or it was kept alive."""
        message = protocol.NannyKeepalive.from_msg(msg)
        self.enabled = message.enabled
        if message.kept_alive is not None:
            self.worker_kept_alive = message.kept_alive
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
            await nanny.close(reason=protocol.RELEASE_REASON)
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
            shell_address(nanny),
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
        nanny = self.nanny
        address = getattr(nanny.process, "worker_address", None) if nanny.process else None
        if not address or getattr(nanny, "dask_cli_shell", None) is None:
            return
        try:
            await publish_record(
                nanny,
                3,
                address=address,
                kept_alive_reason=f"worker process {record.describe()}; the nanny keeps `crash`",
            )
        except Exception as exc:
            logger.debug("Crash record not published to the scheduler: %r", exc)

    def _release(self, request: protocol.Release, session: ShellSession) -> dict:
        """``dask worker release`` on a nanny kept up after a crash: it exits now."""
        from dask_cli.errors import DaskCliError

        if self.crash is None:
            raise DaskCliError(
                f"Worker {self.nanny.name!r} is not kept alive",
                hint="Only kept-alive workers can be released; stop a running worker with "
                "SIGTERM, or client.retire_workers().",
            )
        loop = self.nanny.loop
        loop.add_callback(lambda: loop.call_later(RELEASE_DELAY, self.release))
        return target_info(self.nanny).to_msg()

    async def release(self) -> None:
        logger.info("Nanny %r released after the crash of its worker", self.nanny.name)
        await self.nanny.close(reason=protocol.RELEASE_REASON)

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
            log=_tail(Path(self.crash_dir or "", LOG_FILE), LOG_LINES),
            stacks=_read(Path(self.crash_dir or "", STACKS_FILE)),
        )
        self.crashes.append(record)
        return record


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
