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


def duration(key: str, default: object = None) -> float | None:
    """The config value ``cli.KEY`` in seconds (dask time strings allowed); None stays None.

    A value that is not a duration is an error naming the key and its environment
    variable, not dask's ``KeyError`` listing every unit it knows."""
    from dask.utils import parse_timedelta

    value = get(key, default)
    if value is None:
        return None
    try:
        seconds = parse_timedelta(value, default="seconds")
    except (KeyError, ValueError, TypeError):
        seconds = -1
    if seconds is None or seconds <= 0:
        variable = "DASK_CLI__" + key.replace(".", "__").replace("-", "_").upper()
        raise DaskCliError(
            f"Config value cli.{key} = {value!r} is not a duration",
            hint=f"Set it to seconds or a time string like 10s in your dask config "
            f"or with {variable}.",
        )
    return float(seconds)


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
