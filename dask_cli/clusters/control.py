"""Ask named clusters how they are, scale them, stop them (the client side of the holder).

Clusters run by ``dask cluster start|create`` are asked through their holder
(:mod:`dask_cli.clusters.protocol`); clusters that another process registered
(``dask ssh --name``) through their scheduler's own ``identity`` handler. Liveness
always comes from the folder's lock first, so a dead cluster is reported dead at
once, without waiting for a connection to time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dask_cli.clusters import protocol
from dask_cli.clusters.processes import kill_marked
from dask_cli.clusters.protocol import ClusterInfo
from dask_cli.clusters.state import (
    ClusterNotFound,
    ClusterState,
    CorruptState,
    cluster_dir,
    known_names_hint,
    names,
    owner_alive,
    read,
    remove,
)
from dask_cli.errors import ConnectionFailed, DaskCliError

# `list` asks every cluster at once; one that has not answered by then is unreachable.
SURVEY_TIMEOUT = 3.0
POLL_INTERVAL = 0.2

RUNNING, STARTING, DEAD, UNREACHABLE, CORRUPT = (
    "running",
    "starting",
    "dead",
    "unreachable",
    "corrupt",
)


@dataclass
class ClusterStatus:
    """A named cluster as ``list`` and ``info`` show it: its record and, when it answered,
    what it says now."""

    name: str
    status: str
    state: ClusterState | None = None
    info: ClusterInfo | None = None
    problem: str | None = None  # why it is unreachable or corrupt

    def to_dict(self) -> dict[str, Any]:
        state, info = self.state, self.info
        return {
            "name": self.name,
            "kind": state.kind if state else None,
            "source": state.source if state else None,
            "status": self.status,
            "scheduler_address": state.scheduler_address if state else None,
            "dashboard_link": (info.dashboard_link if info else None)
            or (state.dashboard_link if state else None),
            "workers": len(info.workers) if info else None,
            "threads": info.nthreads if info else None,
            "memory": info.memory if info else None,
            "created": state.created if state else None,
            "problem": self.problem,
        }


async def _call(address: str, op: str, timeout: float, **kwargs: Any) -> Any:
    """Ask a scheduler (not a holder): only clusters without a holder need distributed."""
    from distributed.core import rpc

    async def ask() -> Any:
        async with rpc(address, timeout=timeout) as remote:
            return await getattr(remote, op)(**kwargs)

    return await asyncio.wait_for(ask(), timeout)


async def holder_request(state: ClusterState, op: str, timeout: float, **kwargs: Any) -> Any:
    """Send ``op`` to the cluster's holder; one clear error when it cannot be done."""
    holder = state.holder
    if holder is None or not holder.address:
        raise DaskCliError(
            f"Cluster {state.name!r} is not run by `dask cluster` (it comes from {state.source})",
            hint="Manage it with the command that started it.",
        )
    try:
        return await protocol.request(holder.address, op, timeout, token=holder.token, **kwargs)
    except protocol.Unauthorized:
        raise DaskCliError(f"The holder of cluster {state.name!r} refused the request") from None
    except (OSError, ValueError, asyncio.TimeoutError) as exc:
        raise ConnectionFailed(
            f"The holder of cluster {state.name!r} does not answer at {holder.address}: "
            f"{exc or type(exc).__name__}",
            hint=f"`dask cluster logs {state.name}`; `dask cluster stop {state.name}` cleans up.",
        ) from None
    except protocol.RemoteError as exc:  # the holder's own failure, sent back to us
        raise DaskCliError(
            f"The holder of cluster {state.name!r} could not do it: {exc}",
            hint=f"`dask cluster logs {state.name}` may say more.",
        ) from None


async def current_info(state: ClusterState, timeout: float) -> ClusterInfo:
    """What the cluster says now: its holder's report, else its scheduler's identity."""
    if state.holder is not None and state.holder.address:
        return ClusterInfo.from_dict(await holder_request(state, protocol.INFO, timeout))
    if not state.scheduler_address:
        raise ConnectionFailed(f"Cluster {state.name!r} has no scheduler address yet")
    try:
        identity = await _call(state.scheduler_address, "identity", timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        raise ConnectionFailed(
            f"The scheduler of cluster {state.name!r} does not answer at "
            f"{state.scheduler_address}: {exc or type(exc).__name__}"
        ) from None
    info = ClusterInfo.from_identity(identity)
    info.dashboard_link = state.dashboard_link
    return info


async def status(name: str, timeout: float = SURVEY_TIMEOUT) -> ClusterStatus:
    """How ``name`` is now: running, starting, dead, unreachable or corrupt.

    Raises :class:`ClusterNotFound` only; every other problem is part of the status.
    """
    try:
        state = read(name)
    except CorruptState as exc:
        return ClusterStatus(name, CORRUPT, problem=exc.message)
    if not owner_alive(name):
        return ClusterStatus(name, DEAD, state)
    if state.status == STARTING:
        return ClusterStatus(name, STARTING, state)
    try:
        info = await current_info(state, timeout)
    except DaskCliError as exc:
        return ClusterStatus(name, UNREACHABLE, state, problem=exc.message)
    except Exception as exc:  # noqa: BLE001 - an odd reply is "unreachable", not a crash
        return ClusterStatus(name, UNREACHABLE, state, problem=f"{type(exc).__name__}: {exc}")
    return ClusterStatus(name, RUNNING, state, info)


async def survey(timeout: float = SURVEY_TIMEOUT) -> list[ClusterStatus]:
    """The status of every recorded cluster, asked all at once."""
    found = await asyncio.gather(
        *(status(name, timeout) for name in names()), return_exceptions=True
    )
    return [s for s in found if isinstance(s, ClusterStatus)]  # a folder removed meanwhile


async def scale(
    name: str,
    n: int,
    timeout: float,
    wait: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> ClusterInfo:
    """Ask the holder to scale ``name`` to ``n`` workers; with ``wait``, until it has
    exactly ``n`` (surplus workers are retired gracefully, their data moved).

    ``on_progress(current, n)`` is called on every poll.
    """
    state = _live_state(name)
    await holder_request(state, protocol.SCALE, min(timeout, 30), n=n)
    deadline = time.monotonic() + timeout
    while True:
        info = await current_info(state, min(timeout, 10))
        if on_progress is not None:
            on_progress(len(info.workers), n)
        if not wait or len(info.workers) == n:
            return info
        if time.monotonic() > deadline:
            raise DaskCliError(
                f"Cluster {name!r} has {len(info.workers)} of {n} workers after {timeout:g}s",
                hint=f"Scaling goes on in the background; `dask cluster logs {name}` says why.",
            )
        await asyncio.sleep(POLL_INTERVAL)


def _live_state(name: str) -> ClusterState:
    state = read(name)
    if not owner_alive(name):
        raise DaskCliError(
            f"Cluster {name!r} is dead", hint=f"`dask cluster stop {name}` cleans it up."
        )
    return state


def scheduler_address_for(name: str) -> str:
    """The scheduler address of the named cluster ``name`` (what ``--cluster NAME`` means).

    One clear error when there is no such cluster, it is dead, or still starting.
    Reads the local state only: nothing is imported or asked over the network.
    """
    state = _live_state(name)
    if not state.scheduler_address:
        raise DaskCliError(
            f"Cluster {name!r} is still starting", hint=f"`dask cluster info {name}` shows when."
        )
    return state.scheduler_address


@dataclass(frozen=True)
class StopOutcome:
    name: str
    how: str  # "stopped", "killed" or "cleaned up"
    leftovers: int = 0  # processes that had to be killed


def stop(name: str, timeout: float = 30.0, force: bool = False) -> StopOutcome:
    """Stop ``name`` and remove its record.

    Gracefully first (the holder closes the cluster: workers retire, the scheduler
    closes; a registered cluster's process gets SIGTERM), at most ``timeout`` seconds;
    then, or at once with ``force``, SIGKILL to every process of the cluster. A dead
    or corrupt cluster is just cleaned up.
    """
    directory = cluster_dir(name)
    if not directory.is_dir():
        raise ClusterNotFound(f"No cluster named {name!r}", hint=known_names_hint())
    try:
        state: ClusterState | None = read(name)
    except CorruptState:
        state = None
    how = "cleaned up"
    if owner_alive(name):
        how = "killed"
        if not force and state is not None and _ask_to_stop(state, timeout):
            how = "stopped" if _wait_until_gone(name, timeout + 5) else "killed"
    if how == "killed" and state is not None and owner_alive(name):
        for pid in {state.pid, state.holder.pid if state.holder else None} - {None, 0}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
    # After a graceful stop, stragglers (multiprocessing's resource tracker) get a
    # moment to exit by themselves.
    leftovers = kill_marked(directory, grace=3.0 if how == "stopped" else 0.0)
    remove(name)
    return StopOutcome(name, how, leftovers)


def _ask_to_stop(state: ClusterState, timeout: float) -> bool:
    """Ask the holder (or the registering process) to stop; whether it was told."""
    if state.holder is not None and state.holder.address:
        try:
            asyncio.run(holder_request(state, protocol.STOP, 10, grace=timeout))
            return True
        except DaskCliError:
            pass
    pid = state.pid or (state.holder.pid if state.holder else None)
    if not pid:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _wait_until_gone(name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while owner_alive(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
