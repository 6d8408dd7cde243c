"""The options every command that talks to a running cluster shares.

``@client_options`` adds ``--scheduler``, ``--scheduler-file``, ``--cluster``, ``--tls-*`` and
``--timeout`` and hands the command one ``settings`` argument (a
``ClientSettings``). No distributed import here: ``--help`` stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from dask_cli.clusters.completion import complete_cluster_name

CLIENT_OPTION_NAMES = (
    "scheduler",
    "scheduler_file",
    "cluster",
    "tls_ca_file",
    "tls_cert",
    "tls_key",
    "timeout",
)


def client_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the connection options; the command receives ``settings: ClientSettings``."""

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        from dask_cli.debug.client.settings import ClientSettings

        values = {name: kwargs.pop(name, None) for name in CLIENT_OPTION_NAMES}
        return func(settings=ClientSettings(**values), **kwargs)

    options = [
        click.option(
            "--scheduler",
            metavar="ADDRESS",
            help="Scheduler address [default: dask config scheduler-address, "
            "DASK_SCHEDULER_ADDRESS].",
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
            type=click.FloatRange(min=0, min_open=True),
            metavar="SECONDS",
            help="Seconds to wait for a connection, and for any sign of life while "
            "waiting for a result [default: config cli.client.timeout, 10s].",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper
