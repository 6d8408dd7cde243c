"""Where named clusters are recorded: one folder per cluster in the user's state directory.

A cluster's folder (``<state dir>/NAME/``, mode 0700) holds

- ``state.json``: what the cluster is (:class:`ClusterState`), written atomically;
- ``owner.lock``: locked (``flock``, exclusive) for as long as the process that owns
  the cluster lives: the holder of ``dask cluster start``, or the ``dask ssh`` process
  that registered it. The kernel drops the lock when that process dies, however it
  dies, so "is the owner alive?" never trusts a pid that may have been reused;
- ``holder.log``: the holder's output (scheduler and worker logs included).

A folder is published complete or not at all: it is built under a temporary name,
lock taken and state written, then renamed into place. ``rename`` fails when the
name exists, which is how two ``start``s of one name resolve: one wins, the other
gets :class:`ClusterExists`.

The state directory is dask config ``cli.cluster.state-dir``
(``DASK_CLI__CLUSTER__STATE_DIR``), else ``platformdirs.user_state_dir("dask-cli")``
plus ``clusters``. Nothing here imports distributed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dask_cli.errors import DaskCliError

STATE_FILE = "state.json"
LOCK_FILE = "owner.lock"
LOG_FILE = "holder.log"
STATE_VERSION = 1
# Every process of a cluster carries this variable (value: the cluster's folder), so
# that `stop` finds the processes a dead holder left behind without trusting pids.
PROCESS_MARKER = "DASK_CLI_CLUSTER"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ClusterNotFound(DaskCliError):
    """No named cluster of that name."""


class ClusterExists(DaskCliError):
    """A cluster of that name is already recorded."""


class CorruptState(DaskCliError):
    """A cluster's state file cannot be read."""


@dataclass
class Holder:
    """The process that owns a cluster manager and answers control requests
    (:mod:`dask_cli.clusters.protocol`) on ``address``, given ``token``."""

    pid: int
    address: str | None = None
    token: str = ""


@dataclass
class ClusterState:
    """What ``state.json`` records about one named cluster.

    ``holder`` is set for clusters that ``dask cluster start/create`` runs; it is None
    for clusters registered by another process (``dask ssh --name``), whose ``pid``
    is the process to signal to stop them.
    """

    name: str
    kind: str  # the cluster manager's class, e.g. "distributed.LocalCluster"
    source: str  # who made it: "dask cluster start", "spec.yaml", "dask ssh"
    created: float = field(default_factory=time.time)
    status: str = "starting"  # "starting" or "running" (liveness is the lock's business)
    scheduler_address: str | None = None
    dashboard_link: str | None = None
    pid: int | None = None
    holder: Holder | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    version: int = STATE_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterState:
        data = dict(data)
        holder = data.pop("holder", None)
        known = set(cls.__dataclass_fields__)
        state = cls(**{k: v for k, v in data.items() if k in known})
        state.holder = Holder(**holder) if holder else None
        return state


def state_root() -> Path:
    """The directory that holds one folder per named cluster (created 0700 on demand)."""
    from dask_cli import config

    configured = config.get("cluster.state-dir", None)
    if configured:
        return Path(os.path.expanduser(str(configured)))
    import platformdirs

    return Path(platformdirs.user_state_dir("dask-cli")) / "clusters"


def check_name(name: str) -> str:
    """``name`` if it can name a cluster (a folder name), else a usage error."""
    if not _NAME.match(name or ""):
        raise DaskCliError(
            f"Invalid cluster name {name!r}",
            hint="Use up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            exit_code=2,
        )
    return name


def cluster_dir(name: str) -> Path:
    return state_root() / check_name(name)


def names() -> list[str]:
    """Names of every recorded cluster (dead ones included), sorted."""
    try:
        entries = os.listdir(state_root())
    except OSError:
        return []
    return sorted(e for e in entries if _NAME.match(e) and (state_root() / e).is_dir())


def read(name: str) -> ClusterState:
    """The recorded state of ``name``: :class:`ClusterNotFound` or :class:`CorruptState`."""
    directory = cluster_dir(name)
    if not directory.is_dir():
        raise ClusterNotFound(f"No cluster named {name!r}", hint=known_names_hint())
    return load(directory)


def load(directory: Path) -> ClusterState:
    """The state recorded in the cluster folder ``directory`` (:class:`CorruptState`)."""
    name, path = directory.name, directory / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown state version {data.get('version')!r}")
        return ClusterState.from_dict(data)
    except FileNotFoundError:
        raise CorruptState(
            f"Cluster {name!r} has no state file ({path})",
            hint=f"`dask cluster stop {name}` removes what is left of it.",
        ) from None
    except OSError as exc:
        raise CorruptState(f"Cannot read the state of cluster {name!r}: {exc}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise CorruptState(
            f"The state file of cluster {name!r} is corrupt ({path}): {exc}",
            hint=f"`dask cluster stop {name}` removes it.",
        ) from None


def known_names_hint() -> str:
    """A hint that names the recorded clusters (for "no such cluster" errors)."""
    known = names()
    if not known:
        return "No named clusters exist; start one with `dask cluster start NAME`."
    return "Known clusters: " + ", ".join(known) + "."


def write(state: ClusterState, directory: Path | None = None) -> None:
    """Replace ``state.json`` atomically (a reader sees the old or the new, never half)."""
    directory = directory or cluster_dir(state.name)
    fd, partial = tempfile.mkstemp(prefix=".state-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(state.to_dict(), file, indent=2, default=str)
        os.replace(partial, directory / STATE_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def owner_alive(name: str) -> bool:
    """Whether the process owning ``name`` (holder or registrant) is alive: its lock is held."""
    try:
        fd = os.open(cluster_dir(name) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        return False
    finally:
        os.close(fd)  # closing drops our shared lock, if we got it


@dataclass
class NewCluster:
    """A freshly published cluster folder whose lock this process holds (``lock_fd``)."""

    state: ClusterState
    directory: Path
    lock_fd: int

    def release(self) -> None:
        """Give up ownership (the lock) without removing anything."""
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)


def create(state: ClusterState) -> NewCluster:
    """Publish a folder for ``state.name`` with the lock held by this process.

    Raises :class:`ClusterExists` when the name is taken, live or dead.
    """
    root = state_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = root / check_name(state.name)
    building = Path(tempfile.mkdtemp(prefix=f".{state.name}.", dir=root))  # mode 0700
    lock_fd = os.open(building / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        write(state, building)
        (building / LOG_FILE).touch(mode=0o600)
        try:
            os.rename(building, target)
        except OSError as exc:
            if target.exists():
                raise _exists(state.name) from None
            raise DaskCliError(f"Cannot record cluster {state.name!r} in {root}: {exc}") from None
    except BaseException:
        os.close(lock_fd)
        shutil.rmtree(building, ignore_errors=True)
        raise
    return NewCluster(state, target, lock_fd)


def _exists(name: str) -> ClusterExists:
    if owner_alive(name):
        return ClusterExists(
            f"A cluster named {name!r} already exists",
            hint=f"Pick another name, or stop it first: `dask cluster stop {name}`.",
        )
    return ClusterExists(
        f"A cluster named {name!r} already exists but is dead",
        hint=f"`dask cluster stop {name}` cleans it up.",
    )


def remove(name: str) -> None:
    """Delete ``name``'s folder (its state and logs)."""
    shutil.rmtree(cluster_dir(name), ignore_errors=True)


def log_file(name: str) -> Path:
    return cluster_dir(name) / LOG_FILE


@contextlib.contextmanager
def registered_cluster(
    name: str,
    scheduler_address: str,
    kind: str,
    source: str,
    dashboard_link: str | None = None,
    pid: int | None = None,
    spec: dict[str, Any] | None = None,
) -> Iterator[ClusterState]:
    """Record a cluster that this process manages itself, for as long as the block runs.

    This is how other commands make their clusters nameable: inside the block,
    ``dask cluster list`` shows ``name`` (running while this process lives, dead if it
    dies), ``--cluster name`` reaches ``scheduler_address``, and ``dask cluster stop
    name`` sends SIGTERM to ``pid`` (default: this process) and then, if it does not
    exit in time, SIGKILL to it and to every process that carries the
    :data:`PROCESS_MARKER` of the cluster (set in ``os.environ`` here, so the
    processes this one starts afterwards carry it). The record is removed when the
    block exits. Raises :class:`ClusterExists` when the name is taken::

        with registered_cluster("gpu", cluster.scheduler_address, "SSHCluster", "dask ssh"):
            wait_for_ctrl_c()
    """
    state = ClusterState(
        name=name,
        kind=kind,
        source=source,
        status="running",
        scheduler_address=scheduler_address,
        dashboard_link=dashboard_link,
        pid=pid or os.getpid(),
        spec=spec or {},
    )
    new = create(state)
    os.environ[PROCESS_MARKER] = str(new.directory)
    try:
        yield state
    finally:
        with contextlib.suppress(DaskCliError):
            if read(name).created == state.created:  # not a successor of the same name
                remove(name)
        new.release()
        if os.environ.get(PROCESS_MARKER) == str(new.directory):
            del os.environ[PROCESS_MARKER]
