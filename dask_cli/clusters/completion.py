"""Tab completion of cluster names (``--cluster NAME``, ``dask cluster stop NAME``).

Reads the state directory only: no network, no distributed, and never an error in
the user's shell.
"""

from __future__ import annotations

from typing import Any


def complete_cluster_name(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """click ``shell_complete`` callback: recorded cluster names starting with ``incomplete``."""
    try:
        from dask_cli.clusters.state import names

        return [name for name in names() if name.startswith(incomplete)]
    except Exception:  # completion must never break the user's shell
        return []
