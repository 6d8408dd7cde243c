"""The root ``dask`` command.

Built-in commands are imported only when used; commands from other packages
come from entry points (see :mod:`dask_cli.plugins`) and are listed in
``--help`` without being imported. Failures reach the user as one red line with
the root cause and a hint, exit status 1 (usage errors: click's, status 2), never
as a traceback: ``--traceback`` or the config key ``cli.traceback`` show one.
"""

from __future__ import annotations

import errno
import sys

import click

from dask_cli import __version__
from dask_cli.errors import DaskCliError
from dask_cli.lazy import LazyCommand, LazyGroup

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

BUILTIN_COMMANDS: dict[str, LazyCommand] = {
    "scheduler": LazyCommand(
        "dask_cli.commands.scheduler:scheduler", "Start a scheduler, or open a shell in one."
    ),
    "worker": LazyCommand(
        "dask_cli.commands.worker:worker", "Start workers, or list, inspect and shell into them."
    ),
    "spec": LazyCommand(
        "distributed.cli.dask_spec:main", "Start a scheduler or workers from a spec."
    ),
    "ssh": LazyCommand("dask_cli.commands.ssh:ssh", "Launch a cluster over SSH."),
    "job": LazyCommand(
        "dask_cli.commands.job:job", "Run a script on the cluster as a task, fetch it by key."
    ),
    "cluster": LazyCommand(
        "dask_cli.commands.cluster:cluster",
        "Named clusters that outlive the command: start, list, scale, stop.",
    ),
    "info": LazyCommand(
        "dask_cli.commands.info:info", "Report versions and configuration for bug reports."
    ),
    "config": LazyCommand(
        "dask_cli.commands.config:config", "Get, set, list and find dask config."
    ),
    "top": LazyCommand(
        "dask_cli.commands.top:top", "Terminal dashboard of a cluster: workers, tasks, logs."
    ),
    "docs": LazyCommand("dask_cli.commands.docs:docs", "Open the Dask documentation."),
    "completion": LazyCommand(
        "dask_cli.commands.completion:completion", "Print a shell completion script."
    ),
}


class RootGroup(LazyGroup):
    """Built-ins first, then entry-point plugins, then ``dask-NAME`` on PATH.

    Plugins are listed from package metadata and imported only when invoked (see
    :mod:`dask_cli.plugins`); a plugin named like a built-in is ignored with a notice.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        from dask_cli import plugins

        return sorted({*super().list_commands(ctx), *plugins.discover(BUILTIN_COMMANDS)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return super().get_command(ctx, cmd_name)
        from dask_cli import plugins

        return plugins.load(cmd_name, BUILTIN_COMMANDS)

    def short_help_for(self, ctx: click.Context, cmd_name: str) -> str | None:
        if cmd_name in self.lazy_subcommands:
            return super().short_help_for(ctx, cmd_name)
        from dask_cli import plugins

        found = plugins.discover(BUILTIN_COMMANDS).get(cmd_name)
        return found.short_help if found else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from dask_cli import plugins

        plugins.warn_about_ignored(BUILTIN_COMMANDS)
        super().format_commands(ctx, formatter)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and not ctx.resilient_parsing:
            from dask_cli import plugins

            plugins.warn_about_ignored(BUILTIN_COMMANDS, only=name)
        return name, command, rest


_show_traceback = False


def _set_traceback(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    global _show_traceback
    _show_traceback = bool(value)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    for package in ("dask-cli", "dask", "distributed"):
        try:
            found = version(package)
        except PackageNotFoundError:
            found = __version__ if package == "dask-cli" else "not installed"
        click.echo(f"{package} {found}")
    ctx.exit()


@click.group(
    cls=RootGroup,
    lazy_subcommands=BUILTIN_COMMANDS,
    context_settings=CONTEXT_SETTINGS,
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the versions of dask-cli, dask and distributed and exit.",
)
@click.option(
    "--traceback",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_traceback,
    help="Show the full traceback of a failure [default: config cli.traceback].",
)
def cli() -> None:
    """Dask command line interface: start clusters, and look inside them."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run ``cli`` and turn failures into one line."""
    try:
        cli.main(args=argv, prog_name="dask", standalone_mode=True)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if _wants_traceback():
            raise
        from dask_cli.output import report_error

        message, hint = describe_failure(exc)
        report_error(message, hint=hint)
        sys.exit(exc.exit_code if isinstance(exc, DaskCliError) else 1)


TRACEBACK_HINT = "Run with --traceback (or set cli.traceback: true) for the full traceback."


def describe_failure(exc: BaseException) -> tuple[str, str | None]:
    """One line for ``exc`` with its root cause, and a hint.

    ``RuntimeError("Scheduler failed to start.")`` raised from ``OSError(98)`` becomes
    ``Scheduler failed to start: [Errno 98] Address already in use``: the cause is
    what the user can act on."""
    if isinstance(exc, DaskCliError):
        return exc.message, exc.hint
    chain = [exc]
    while len(chain) < 10:
        cause = chain[-1].__cause__ or chain[-1].__context__
        if cause is None or cause in chain:
            break
        chain.append(cause)
    root = chain[-1]
    if isinstance(root, DaskCliError):
        return root.message, root.hint
    if root is exc:
        message = _one_line(exc)
    else:  # what failed, in its own words, then why
        top = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else ""
        message = f"{top}: {_one_line(root)}" if top else _one_line(root)
    hint = TRACEBACK_HINT
    if isinstance(root, OSError) and root.errno == errno.EADDRINUSE:
        hint = "Another process uses that port: choose another, or 0 for a random one."
    return message, hint


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, OSError) and exc.errno is not None:
        return text  # "[Errno 98] Address already in use" says what it is
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _wants_traceback() -> bool:
    if _show_traceback:
        return True
    try:
        from dask_cli import config

        return bool(config.get("traceback", False))
    except Exception:  # noqa: BLE001 - a broken config must not hide the failure
        return False
