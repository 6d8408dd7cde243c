"""The options our ``dask worker``/``dask scheduler`` add to distributed's, and how
they reach the debugging plugins: through dask config (``cli.*``), which the
nanny hands on to its worker processes, plus a preload of ``dask_cli.debug``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

DEBUG_PRELOAD = "dask_cli.debug"

SHELL_OPTIONS = [
    click.Option(
        ["--shell/--no-shell"],
        default=None,
        help="Serve `dask worker shell` sessions in each process "
        "[default: on; config cli.shell.enabled].",
    ),
    click.Option(
        ["--shell-port"],
        default=None,
        help="Port of the shell service, random by default. With --nworkers, a range "
        "like 9000:9010 gives each process one port of it.",
    ),
]

KEEPALIVE_OPTIONS = [
    click.Option(
        ["--keepalive/--no-keepalive"],
        default=None,
        help="When the worker fails (scheduler lost, internal error, lifetime), keep it "
        "up with its state for post-mortem instead of exiting "
        "[default: off; config cli.keepalive.enabled].",
    ),
    click.Option(
        ["--keepalive-timeout"],
        default=None,
        help="Exit a kept-alive worker after this duration, like '10 minutes' [default: never].",
    ),
]


def debug_settings(
    shell: bool | None = None,
    shell_port: str | None = None,
    keepalive: bool | None = None,
    keepalive_timeout: str | None = None,
) -> dict[str, Any]:
    """The dask config entries that given flags set (flags left unset keep config)."""
    settings: dict[str, Any] = {}
    if shell is not None:
        settings["cli.shell.enabled"] = shell
    if shell_port is not None:
        settings["cli.shell.port"] = shell_port
    if keepalive is not None:
        settings["cli.keepalive.enabled"] = keepalive
    if keepalive_timeout is not None:
        settings["cli.keepalive.timeout"] = keepalive_timeout
    return settings


def wrap_with_debug_options(
    base: click.Command,
    extra_params: list[click.Option],
    preload_params: tuple[str, ...],
    help_text: str,
) -> click.Command:
    """distributed's command ``base`` plus ``extra_params``; applying them and adding
    our preload to each of ``preload_params`` before running ``base``'s callback."""
    extra_names = [p.name for p in extra_params]
    base_callback: Callable[..., Any] = base.callback  # type: ignore[assignment]

    def run(**kwargs: Any) -> Any:
        import dask.config

        from dask_cli import config

        config.register_defaults()
        ours = {name: kwargs.pop(name) for name in extra_names}
        dask.config.set(debug_settings(**ours))
        for name in preload_params:
            if DEBUG_PRELOAD not in kwargs[name]:
                kwargs[name] = (*kwargs[name], DEBUG_PRELOAD)
        return base_callback(**kwargs)

    return click.Command(
        name="start",
        callback=run,
        params=[*extra_params, *base.params],
        context_settings=dict(base.context_settings),
        help=help_text,
    )
