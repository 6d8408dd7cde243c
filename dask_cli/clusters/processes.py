"""Find and kill the processes of a named cluster, whoever their parent is now.

Every process of a cluster carries :data:`~dask_cli.clusters.state.PROCESS_MARKER`
in its environment (the holder sets it, children inherit it), so after a holder died
its leftovers (a kept-alive worker, say) are found by that mark rather than by pids
that may have been reused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from dask_cli.clusters.state import PROCESS_MARKER


def marked_processes(directory: Path) -> list[int]:
    """Pids of this user's processes that belong to the cluster in ``directory``."""
    import psutil

    mark, me, uid = str(directory), os.getpid(), os.getuid()
    found = []
    for process in psutil.process_iter(["uids"]):
        try:
            if process.pid == me or process.info["uids"] is None:
                continue
            if process.info["uids"].real != uid:
                continue
            if process.environ().get(PROCESS_MARKER) == mark:
                found.append(process.pid)
        except (psutil.Error, OSError):
            continue
    return found


def kill_marked(directory: Path, grace: float = 0.0, timeout: float = 5.0) -> int:
    """SIGKILL every process of the cluster in ``directory`` that has not exited
    within ``grace`` seconds; how many had to be killed."""
    import psutil

    pids = marked_processes(directory)
    if pids and grace:
        _, alive = psutil.wait_procs(_processes(pids), timeout=grace)
        pids = [p.pid for p in alive]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).wait(max(0.0, deadline - time.monotonic()))
    return len(pids)


def _processes(pids: list[int]) -> list:
    import psutil

    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found
