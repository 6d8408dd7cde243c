"""The options every command that talks to a running cluster shares.

``@client_options`` adds ``--scheduler``, ``--scheduler-file``, ``--cluster``, ``--tls-*``
and ``--timeout`` and hands the command one ``settings`` argument (a
``ClientSettings``). No distributed import here: ``--help`` stays fast.

To add an option: append it to ``CLIENT_OPTIONS``; its parameter name must be a
field of ``ClientSettings``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from dask_cli.clusters.completion import complete_cluster_name
from dask_cli.commands.param_types import ADDRESS, DURATION

CLIENT_OPTIONS = [
    click.option(
        "--scheduler",
        type=ADDRESS,
        metavar="ADDRESS",
        help="Scheduler address [default: dask config scheduler-address, DASK_SCHEDULER_ADDRESS].",
    ),
    click.option(
        "--scheduler-file",
        type=click.Path(dir_okay=False),
        help="JSON file written by `dask scheduler --scheduler-file`.",
    ),
    click.option(
        "--cluster",
        metavar="NAME",
        shell_complete=complete_cluster_name,
        help="A named cluster of `dask cluster` (see `dask cluster list`).",
    ),
    click.option("--tls-ca-file", type=click.Path(dir_okay=False), help="CA file (TLS)."),
    click.option("--tls-cert", type=click.Path(dir_okay=False), help="Client certificate."),
    click.option("--tls-key", type=click.Path(dir_okay=False), help="Client private key."),
    click.option(
        "--timeout",
        type=DURATION,
        metavar="DURATION",
        help="How long a peer that accepted the connection may stay silent (seconds, or "
        "like 5s, 2min) [default: config cli.client.timeout, 10s]. A refused or "
        "unreachable address fails at once.",
    ),
]


def client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the connection options; the command receives ``settings: ClientSettings``."""

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        from dask_cli.debug.client.settings import ClientSettings

        fields = ClientSettings.__dataclass_fields__
        values = {name: kwargs.pop(name) for name in list(kwargs) if name in fields}
        return func(settings=ClientSettings(**values), **kwargs)

    for option in reversed(CLIENT_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
