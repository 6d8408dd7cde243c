"""Cluster specs: which cluster manager class a named cluster runs, and with what.

The file format is dask-ctl's, so existing spec files keep working::

    version: 1
    module: dask_jobqueue          # or distributed, dask_kubernetes, ...
    class: SLURMCluster
    args: []
    kwargs:
      cores: 8
      memory: 16GB
      job-extra-directives: [...]  # '-' in keyword names becomes '_'

``dask cluster start`` writes the same thing for ``distributed.LocalCluster``. Only
the holder imports the class; loading a spec imports nothing but YAML.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dask_cli.errors import DaskCliError

DEFAULT_SPEC_FILE = "dask-cluster.yaml"


@dataclass
class ClusterSpec:
    """A cluster manager class and its arguments, plus ``workers`` to scale to once it
    is up (None: leave the count to the manager's own arguments)."""

    module: str
    cls: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    workers: int | None = None

    @property
    def kind(self) -> str:
        return f"{self.module}.{self.cls}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": 1,
            "module": self.module,
            "class": self.cls,
            "args": list(self.args),
            "kwargs": dict(self.kwargs),
        }
        if self.workers is not None:
            data["workers"] = self.workers
        return data

    @classmethod
    def from_dict(cls, data: Any, origin: str = "the spec") -> ClusterSpec:
        """Validate a parsed spec: one clear error per problem, never a KeyError."""
        if not isinstance(data, dict):
            raise DaskCliError(f"{origin} is not a mapping of spec fields")
        if data.get("version") != 1:
            raise DaskCliError(
                f"{origin}: unsupported spec version {data.get('version')!r}",
                hint="Spec files start with `version: 1`.",
            )
        missing = [key for key in ("module", "class") if not data.get(key)]
        if missing:
            raise DaskCliError(f"{origin} has no {' or '.join(missing)}")
        args = data.get("args") or []
        kwargs = data.get("kwargs") or {}
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise DaskCliError(f"{origin}: args must be a list and kwargs a mapping")
        workers = data.get("workers")
        if workers is not None and (not isinstance(workers, int) or workers < 0):
            raise DaskCliError(f"{origin}: workers must be a whole number")
        return cls(
            module=str(data["module"]),
            cls=str(data["class"]),
            args=args,
            kwargs={str(key).replace("-", "_"): value for key, value in kwargs.items()},
            workers=workers,
        )


def find_spec_file(path: str | None = None) -> Path:
    """The spec file ``create`` uses: ``-f PATH``, else config ``cli.cluster.spec``
    (or dask-ctl's ``ctl.cluster-spec``), else ``./dask-cluster.yaml``."""
    import dask.config

    from dask_cli import config

    chosen = (
        path
        or config.get("cluster.spec", None)
        or dask.config.get("ctl.cluster-spec", None)
        or DEFAULT_SPEC_FILE
    )
    found = Path(os.path.expanduser(str(chosen)))
    if not found.is_file():
        raise DaskCliError(
            f"Spec file not found: {found}",
            hint="Pass -f SPEC.yaml, set cli.cluster.spec in dask config, "
            f"or put a {DEFAULT_SPEC_FILE} here.",
        )
    return found


def load_spec(path: Path) -> tuple[ClusterSpec, dict[str, Any]]:
    """The spec in ``path`` and the raw mapping (whose optional ``name`` names the cluster)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DaskCliError(f"Cannot read the spec file {path}: {first}") from None
    return ClusterSpec.from_dict(data, origin=f"The spec file {path}"), data


def local_cluster_spec(
    name: str,
    workers: int,
    nthreads: int | None = None,
    memory_limit: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    dashboard_address: str | None = None,
) -> ClusterSpec:
    """``distributed.LocalCluster`` as ``dask cluster start`` runs it: worker processes
    with nannies, started empty and then scaled to ``workers`` (so the scheduler's
    address is known before the workers are up, for ``--no-wait``).

    Threads per worker default as LocalCluster's do (the cores shared among the
    workers); memory ``auto`` is each worker's share of the machine's memory.
    """
    if nthreads is None:
        nthreads = max(1, math.ceil((os.cpu_count() or 1) / max(workers, 1)))
    return ClusterSpec(
        module="distributed",
        cls="LocalCluster",
        kwargs={
            "name": name,
            "n_workers": 0,
            "threads_per_worker": nthreads,
            "memory_limit": memory_limit or "auto",
            "processes": True,
            "host": host,
            "scheduler_port": port,
            "dashboard_address": dashboard_address or f"{host}:0",
            "silence_logs": False,
        },
        workers=workers,
    )
