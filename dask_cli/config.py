"""dask-cli's settings live in dask's own configuration (the ``cli:`` section).

Importing this module imports dask (not distributed): use it from commands that
need configuration, never from the root command's start-up path.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib

import dask.config
import yaml

from dask_cli.errors import DaskCliError

_HERE = pathlib.Path(__file__).parent
_registered = False


def register_defaults() -> None:
    """Merge ``dask-cli.yaml`` into dask's defaults (idempotent)."""
    global _registered
    if _registered:
        return
    defaults = yaml.safe_load((_HERE / "dask-cli.yaml").read_text())
    dask.config.update_defaults(defaults)
    _registered = True


def register_distributed_defaults() -> None:
    """Make ``distributed.*`` defaults visible without importing distributed (0.45 s).

    dask's own CLI gets them as a side effect of importing distributed's entry
    points; ours loads distributed lazily, so read its YAML directly.
    """
    spec = importlib.util.find_spec("distributed")
    if spec is None or not spec.submodule_search_locations:
        return
    path = pathlib.Path(next(iter(spec.submodule_search_locations))) / "distributed.yaml"
    if path.exists():
        dask.config.update_defaults(yaml.safe_load(path.read_text()))


def get(key: str, default: object = None) -> object:
    """``dask.config.get`` for a key under ``cli.`` with our defaults registered."""
    register_defaults()
    return dask.config.get(f"cli.{key}", default=default)


def scheduler_address(address: str | None = None, scheduler_file: str | None = None) -> str:
    """The scheduler to talk to: ``--scheduler``, else ``--scheduler-file``, else dask's
    ``scheduler-address`` config (``DASK_SCHEDULER_ADDRESS``)."""
    if address:
        return address
    if scheduler_file:
        try:
            return json.loads(pathlib.Path(scheduler_file).read_text())["address"]
        except FileNotFoundError:
            raise DaskCliError(f"Scheduler file not found: {scheduler_file}") from None
        except (ValueError, KeyError, TypeError):
            raise DaskCliError(
                f"Scheduler file {scheduler_file} has no scheduler address",
                hint="It should be the JSON file written by `dask scheduler --scheduler-file`.",
            ) from None
    found = dask.config.get("scheduler-address", default=None)
    if found:
        return str(found)
    raise DaskCliError(
        "No scheduler address given",
        hint="Pass --scheduler ADDRESS or --scheduler-file FILE, or set DASK_SCHEDULER_ADDRESS.",
    )
