"""Named, long-running clusters: ``dask cluster start|create|list|info|scale|stop|logs``.

A named cluster is a cluster manager object (``LocalCluster`` for ``start``, any class
from a spec file for ``create``) owned by a detached holder process
(:mod:`~dask_cli.clusters.holder`), recorded in the user's state directory
(:mod:`~dask_cli.clusters.state`) and controlled over distributed's comm layer
(:mod:`~dask_cli.clusters.protocol`, :mod:`~dask_cli.clusters.control`).

The API other commands use:

- :func:`scheduler_address_for` resolves ``--cluster NAME`` to a scheduler address;
- :func:`registered_cluster` makes a cluster that another process manages (``dask
  ssh --name``, say) a named cluster for as long as that process runs;
- :func:`cluster_names` lists the names (for Tab completion).

Importing this package imports nothing else (each name is imported on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

# Each name from the module that defines it, on first use: ``--cluster`` completion
# and ``--help`` import this package, and control.py pulls in asyncio.
_EXPORTS = {
    "ClusterExists": ("state", "ClusterExists"),
    "ClusterNotFound": ("state", "ClusterNotFound"),
    "ClusterState": ("state", "ClusterState"),
    "CorruptState": ("state", "CorruptState"),
    "cluster_names": ("state", "names"),
    "registered_cluster": ("state", "registered_cluster"),
    "scheduler_address_for": ("control", "scheduler_address_for"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
