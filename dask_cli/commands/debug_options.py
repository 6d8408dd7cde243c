"""The options our ``dask worker``/``dask scheduler`` add to distributed's, and how
they reach the debugging plugins: through dask config (``cli.*``), which the
nanny hands on to its worker processes, plus a preload of ``dask_cli.debug``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from dask_cli.commands.param_types import DURATION
from dask_cli.errors import DaskCliError

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
        type=DURATION,
        default=None,
        help="Exit a kept-alive worker after this duration, like '10 minutes' [default: never].",
    ),
]


def debug_settings(
    shell: bool | None = None,
    shell_port: str | None = None,
    keepalive: bool | None = None,
    keepalive_timeout: float | None = None,
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


@dataclass(frozen=True)
class PreloadTarget:
    """Where a distributed command takes preload modules, and what the server falls back
    to when that option is empty.

    ``param``/``argv_param`` name the click parameters (``preload``, ``preload_argv``);
    ``config`` is the dask config section (``distributed.worker``) whose ``preload`` and
    ``preload-argv`` the server reads when it is handed no modules, or ``None`` where
    distributed's command never falls back (the nanny: it is always handed a tuple).
    """

    param: str
    argv_param: str | None = None
    config: str | None = None


def add_debug_preload(
    modules: Sequence[str],
    argv: Sequence[str] | Sequence[Sequence[str]] | None,
    config_section: str | None,
) -> tuple[list[str], Any]:
    """``modules`` (or, when empty, the configured preloads the server would have used)
    plus :data:`DEBUG_PRELOAD`, and an argv that still matches them.

    Appending to an empty ``--preload`` naively would hide ``distributed.*.preload``
    from config (the server only reads config when handed no modules), a change in
    behaviour from distributed's command.
    """
    import dask.config

    modules = list(modules)
    if not modules and config_section:
        configured = dask.config.get(f"{config_section}.preload", default=None) or []
        modules = [configured] if isinstance(configured, str) else list(configured)
        if not argv:
            argv = dask.config.get(f"{config_section}.preload-argv", default=None) or argv
    if DEBUG_PRELOAD in modules:
        return modules, argv
    if argv and not isinstance(argv[0], str):
        # One argv per module: ours takes none.
        argv = [*argv, []]
    return [*modules, DEBUG_PRELOAD], argv


def wrap_with_debug_options(
    base: click.Command,
    extra_params: list[click.Option],
    preload_targets: tuple[PreloadTarget, ...],
    help_text: str,
) -> click.Command:
    """distributed's command ``base`` plus ``extra_params``; applying them and adding
    our preload to each of ``preload_targets`` before running ``base``'s callback.

    Everything else (parsing, defaults, log lines, signals, exit codes) is ``base``'s own:
    its parameters and callback are reused as they are, not copied.
    """
    extra_names = [p.name for p in extra_params]
    base_callback: Callable[..., Any] = base.callback  # type: ignore[assignment]

    def run(**kwargs: Any) -> Any:
        import dask.config

        from dask_cli import config

        config.register_defaults()
        ours = {name: kwargs.pop(name) for name in extra_names}
        dask.config.set(debug_settings(**ours))
        for target in preload_targets:
            argv = kwargs.get(target.argv_param) if target.argv_param else None
            modules, argv = add_debug_preload(kwargs[target.param], argv, target.config)
            kwargs[target.param] = tuple(modules)
            if target.argv_param:
                kwargs[target.argv_param] = argv
        try:
            return base_callback(**kwargs)
        except ValueError as exc:
            if "scheduler address" not in str(exc):
                raise
            # distributed's own check; the root command would print it with a traceback hint.
            raise DaskCliError(
                str(exc),
                hint="Pass the address (`dask worker tcp://HOST:8786`), --scheduler-file FILE, "
                "or set DASK_SCHEDULER_ADDRESS.",
            ) from exc

    return click.Command(
        name="start",
        callback=run,
        params=[*extra_params, *base.params],
        context_settings=dict(base.context_settings),
        help=help_text,
    )
