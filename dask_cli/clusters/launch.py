"""Start a named cluster: publish its folder, launch the holder detached, wait for it.

The command that calls :func:`launch` returns while the cluster keeps running: the
holder is a process in a session of its own, its output goes to the cluster's log
file, and it inherits the folder's lock (so the cluster is "alive" from the first
moment it is listed) and a pipe on which it reports start-up events
(:mod:`dask_cli.clusters.protocol`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import signal
import subprocess
import sys
import time

from dask_cli.clusters import protocol
from dask_cli.clusters.processes import kill_marked
from dask_cli.clusters.spec import ClusterSpec
from dask_cli.clusters.state import (
    LOG_FILE,
    PROCESS_MARKER,
    ClusterState,
    Holder,
    NewCluster,
    create,
    log_file,
    read,
    remove,
)
from dask_cli.errors import DaskCliError


class WorkersLate(DaskCliError):
    """The cluster is up, but not every worker registered in time (it is left running)."""


# How many lines of the holder's log a start-up failure quotes.
LOG_TAIL = 3


def launch(
    name: str,
    spec: ClusterSpec,
    source: str,
    keepalive: bool | None = None,
    wait: bool = True,
    timeout: float = 120.0,
) -> ClusterState:
    """Start ``spec`` as the named cluster ``name``; return its recorded state.

    Returns once the scheduler is up (``wait=False``) or once every requested worker
    has registered (``wait=True``). A failure to start removes every trace of it and
    raises :class:`DaskCliError` quoting the holder's own error. Raises
    :class:`~dask_cli.clusters.state.ClusterExists` when the name is taken.
    """
    state = ClusterState(
        name=name,
        kind=spec.kind,
        source=source,
        spec=spec.to_dict(),
        options={"keepalive": keepalive},
        holder=Holder(pid=0, token=secrets.token_urlsafe(32)),
    )
    new = create(state)
    try:
        process, events = _spawn(new)
    except BaseException:
        new.release()
        remove(name)
        raise
    new.release()  # the holder shares the lock now; it is held while the holder lives
    try:
        _wait(name, process, events, wait, timeout)
    except WorkersLate:
        raise
    except BaseException:
        _abandon(new, process)
        raise
    finally:
        os.close(events)
    return read(name)


def _spawn(new: NewCluster) -> tuple[subprocess.Popen, int]:
    read_end, write_end = os.pipe()
    try:
        with open(new.directory / LOG_FILE, "ab") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dask_cli.clusters.holder",
                    str(new.directory),
                    str(new.lock_fd),
                    str(write_end),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(new.lock_fd, write_end),
                start_new_session=True,  # no SIGINT/SIGHUP from this terminal
                env={**os.environ, PROCESS_MARKER: str(new.directory)},
            )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return process, read_end


def _wait(name: str, process: subprocess.Popen, events: int, wait: bool, timeout: float) -> None:
    wanted = protocol.READY if wait else protocol.STARTED
    started = False
    buffer = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if started:
                raise WorkersLate(
                    f"Cluster {name!r} is up but not all its workers started within {timeout:g}s",
                    hint=f"`dask cluster info {name}` shows them; `dask cluster logs {name}`.",
                )
            raise DaskCliError(
                f"Cluster {name!r} did not start within {timeout:g}s" + _log_tail(name)
            )
        ready, _, _ = select.select([events], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(events, 65536)
        if not chunk:
            process.wait(10)
            raise DaskCliError(
                f"Cluster {name!r} failed to start: its holder exited "
                f"with status {process.returncode}" + _log_tail(name)
            )
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            message = protocol.parse_event(line)
            if message["event"] == protocol.FAILED:
                raise DaskCliError(f"Cluster {name!r} failed to start: {message.get('error')}")
            if message["event"] == protocol.STARTED:
                started = True
            if message["event"] == wanted or message["event"] == protocol.READY:
                return


def _abandon(new: NewCluster, process: subprocess.Popen) -> None:
    """Undo a start that failed or was interrupted: no holder, no workers, no folder."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)  # a holder closes its cluster on SIGTERM
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        pass
    kill_marked(new.directory)
    remove(new.state.name)


def _log_tail(name: str) -> str:
    try:
        lines = [line for line in log_file(name).read_text(errors="replace").splitlines() if line]
    except OSError:
        return ""
    # The last traceback's final line says what went wrong; distributed logs above it.
    tail = lines[-LOG_TAIL:] if lines else []
    return (": " + " | ".join(line.strip() for line in tail)) if tail else ""
