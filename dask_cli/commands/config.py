"""``dask config get|set|list|find``: dask's own commands, with every default visible.

dask's commands see distributed's defaults only because dask's CLI imports
distributed's entry points first; ours does not import distributed, so the group
registers distributed's and dask-cli's defaults (read from their YAML) before any
subcommand runs. The subcommands themselves are dask's click objects, reused as-is.
"""

from __future__ import annotations

import click
from dask.cli import config_find, config_get, config_list, config_set


@click.group()
def config() -> None:
    """Get, set, list and find dask configuration (as dask's `dask config`).

    Includes the defaults of distributed and of dask-cli (the `cli:` section).
    """
    from dask_cli.config import register_defaults, register_distributed_defaults

    register_defaults()
    register_distributed_defaults()


for _command in (config_get, config_set, config_list, config_find):
    config.add_command(_command)
