"""Clusters that other packages know about: the ``dask_cluster_discovery`` entry points.

The group is dask-ctl's, so dask-kubernetes' ``kubecluster``/``helmcluster`` entries
(and dask-ctl's own ``proxycluster``) show up in ``dask cluster list``. Each entry
point loads to an async generator function yielding ``(name, cluster_class)``.

Every method runs at once, each on a thread with an event loop of its own (an entry
point that imports slowly or blocks its loop holds up nobody), under one overall
timeout. What a method yielded before the timeout is kept. A method that fails or
times out becomes one :class:`DiscoveryProblem`, never an exception. Nothing here
instantiates a cluster manager: the class is only named.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

GROUP = "dask_cluster_discovery"
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class DiscoveredCluster:
    name: str
    kind: str  # the class that could represent it, e.g. "dask_kubernetes.KubeCluster"
    source: str  # "<entry point> (<package>)"


@dataclass(frozen=True)
class DiscoveryProblem:
    source: str
    message: str


@dataclass
class _Method:
    name: str
    package: str
    entry_point: Any
    found: list[DiscoveredCluster] = field(default_factory=list)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def source(self) -> str:
        return f"{self.name} ({self.package})" if self.package else self.name

    def run(self) -> None:
        try:
            asyncio.run(self._collect())
        except BaseException as exc:  # noqa: BLE001 - other packages' code: report, don't crash
            self.error = _one_line(exc)
        finally:
            self.done.set()

    async def _collect(self) -> None:
        method = self.entry_point.load()
        async for item in method():
            name, cls = item
            self.found.append(DiscoveredCluster(str(name), _class_name(cls), self.source))


def _class_name(cls: Any) -> str:
    if isinstance(cls, type):
        return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"
    return str(cls)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def discovery_methods(disabled: frozenset[str] = frozenset()) -> list[_Method]:
    """The registered discovery methods (not loaded yet), minus ``disabled`` names."""
    from importlib.metadata import entry_points

    methods = []
    for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name):
        if ep.name in disabled:
            continue
        dist = getattr(ep, "dist", None)
        methods.append(_Method(ep.name, dist.name if dist is not None else "", ep))
    return methods


class Discovery:
    """Discovery running in the background: :meth:`start`, do other work, :meth:`result`."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, disabled: frozenset[str] = frozenset()):
        self.timeout = timeout
        self.methods = discovery_methods(disabled)
        self.started = 0.0

    def start(self) -> Discovery:
        self.started = time.monotonic()
        for method in self.methods:
            threading.Thread(
                target=method.run, name=f"discovery-{method.name}", daemon=True
            ).start()
        return self

    def result(self) -> tuple[list[DiscoveredCluster], list[DiscoveryProblem]]:
        """Everything found, and one problem per failed or late method."""
        deadline = self.started + self.timeout
        found: list[DiscoveredCluster] = []
        problems: list[DiscoveryProblem] = []
        for method in self.methods:
            if not method.done.wait(max(0.0, deadline - time.monotonic())):
                problems.append(
                    DiscoveryProblem(method.source, f"timed out after {self.timeout:g}s")
                )
            elif method.error:
                problems.append(DiscoveryProblem(method.source, method.error))
            found.extend(list(method.found))
        return found, problems


def settings() -> tuple[float, frozenset[str]]:
    """Timeout and disabled methods from config: ``cli.cluster.discovery-timeout``,
    ``cli.cluster.disable-discovery`` (and dask-ctl's ``ctl.disable_discovery``)."""
    import dask.config
    from dask.utils import parse_timedelta

    from dask_cli import config

    timeout = parse_timedelta(config.get("cluster.discovery-timeout", "5s"), default="s")
    disabled = set(config.get("cluster.disable-discovery", None) or [])
    disabled |= set(dask.config.get("ctl.disable_discovery", None) or [])
    return float(timeout or DEFAULT_TIMEOUT), frozenset(disabled)
