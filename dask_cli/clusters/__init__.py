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

Importing this package imports neither distributed nor the holder.
"""

from dask_cli.clusters.control import scheduler_address_for
from dask_cli.clusters.state import (
    ClusterExists,
    ClusterNotFound,
    ClusterState,
    CorruptState,
    registered_cluster,
)
from dask_cli.clusters.state import names as cluster_names

__all__ = [
    "ClusterExists",
    "ClusterNotFound",
    "ClusterState",
    "CorruptState",
    "cluster_names",
    "registered_cluster",
    "scheduler_address_for",
]
