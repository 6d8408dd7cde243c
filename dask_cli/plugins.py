"""Commands that other packages add to ``dask``.

Three sources, in this order of precedence (built-ins beat all of them):

1. entry points in the group ``dask_cli`` that load to a click command
   (how dask-ctl adds ``dask cluster`` and dask-cuda ``dask cuda``);
2. entry points in the group ``dask_cli.argparse`` that load to a function
   ``main(argv: list[str]) -> int | None`` which may call ``sys.exit``
   (how an argparse tool such as dask-yarn maps in as ``dask yarn``);
3. an executable ``dask-NAME`` on PATH runs as ``dask NAME`` (as git does).

Nothing is imported to list them: ``--help`` shows where each comes from, and a
plugin is loaded only when it is invoked. A plugin that fails to load becomes a
command that prints one line and exits 1; the rest of the CLI keeps working.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Literal

import click

CLICK_GROUP = "dask_cli"
ARGPARSE_GROUP = "dask_cli.argparse"
PATH_PREFIX = "dask-"

# distributed registers these in the ``dask_cli`` group; our built-ins wrap them.
SUPERSEDED_PREFIX = "distributed.cli."


@dataclass(frozen=True)
class PluginCommand:
    """A command found outside dask-cli, described without importing it."""

    name: str
    kind: Literal["click", "argparse", "path"]
    source: str  # the distribution that provides it, or the executable's path
    entry_point: EntryPoint | None = None

    @property
    def short_help(self) -> str:
        if self.kind == "path":
            return f"Runs {self.source}."
        return f"From the package {self.source}."


def _package(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.value.split(":")[0].split(".")[0]


@functools.cache
def _entry_points(group: str) -> tuple[EntryPoint, ...]:
    seen: dict[str, EntryPoint] = {}
    # Sort so that duplicates resolve the same way on every machine: the first
    # distribution by name wins, never "the last one loaded".
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, _package(e))):
        seen.setdefault(ep.name, ep)
    return tuple(seen.values())


def _path_commands() -> dict[str, str]:
    found: dict[str, str] = {}
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        for filename in names:
            if not filename.startswith(PATH_PREFIX) or len(filename) == len(PATH_PREFIX):
                continue
            path = os.path.join(directory, filename)
            name = filename[len(PATH_PREFIX) :]
            if name not in found and os.access(path, os.X_OK) and not os.path.isdir(path):
                found[name] = path
    return found


def discover(builtins: dict[str, object]) -> dict[str, PluginCommand]:
    """Every plugin command whose name no built-in takes, without importing any."""
    found: dict[str, PluginCommand] = {}
    for ep in _entry_points(CLICK_GROUP):
        if ep.name not in builtins:
            found[ep.name] = PluginCommand(ep.name, "click", _package(ep), ep)
    for ep in _entry_points(ARGPARSE_GROUP):
        if ep.name not in builtins and ep.name not in found:
            found[ep.name] = PluginCommand(ep.name, "argparse", _package(ep), ep)
    for name, path in _path_commands().items():
        if name not in builtins and name not in found:
            found[name] = PluginCommand(name, "path", path)
    return found


def shadowed(builtins: dict[str, object]) -> list[PluginCommand]:
    """Plugins that name a built-in and are therefore ignored (distributed's own excepted)."""
    result = []
    for group, kind in ((CLICK_GROUP, "click"), (ARGPARSE_GROUP, "argparse")):
        for ep in _entry_points(group):
            if ep.name in builtins and not ep.value.startswith(SUPERSEDED_PREFIX):
                result.append(PluginCommand(ep.name, kind, _package(ep), ep))
    return result


_warned: set[str] = set()


def warn_about_shadowed(builtins: dict[str, object], only: str | None = None) -> None:
    """One line on stderr per ignored plugin, once per process."""
    from dask_cli.output import notice

    for plugin in shadowed(builtins):
        if (only is None or plugin.name == only) and plugin.name not in _warned:
            _warned.add(plugin.name)
            notice(
                f"Notice: ignoring the '{plugin.name}' command from the package "
                f"{plugin.source}: dask-cli has a built-in command of that name."
            )


def load(name: str, builtins: dict[str, object]) -> click.Command | None:
    """The click command for plugin ``name``, or None when there is none."""
    plugin = discover(builtins).get(name)
    if plugin is None:
        return None
    if plugin.kind == "path":
        return _passthrough_command(name, plugin.short_help, _exec_path(plugin.source))
    assert plugin.entry_point is not None
    try:
        loaded = plugin.entry_point.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's
        return _broken_command(name, f"the package {plugin.source} failed to load it: {exc!r}")
    if plugin.kind == "argparse":
        return _passthrough_command(name, plugin.short_help, _call_argparse_main(name, loaded))
    if not isinstance(loaded, click.Command):
        return _broken_command(
            name,
            f"the package {plugin.source} registered {plugin.entry_point.value}, "
            f"which is a {type(loaded).__name__}, not a click command",
        )
    return loaded


def _broken_command(name: str, reason: str) -> click.Command:
    def fail(args: tuple[str, ...]) -> None:
        from dask_cli.errors import DaskCliError

        raise DaskCliError(f"The command 'dask {name}' is unavailable: {reason}")

    return _passthrough_command(name, f"Unavailable: {reason}", fail)


def _passthrough_command(name, short_help, run) -> click.Command:
    """A command that hands every argument, ``--help`` included, to ``run``."""
    return click.Command(
        name=name,
        callback=run,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
        short_help=short_help,
    )


def _exec_path(path: str):
    def run(args: tuple[str, ...]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(path, [path, *args])

    return run


def _call_argparse_main(name: str, main):
    def run(args: tuple[str, ...]) -> None:
        saved = sys.argv
        sys.argv = [f"dask {name}", *args]
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = saved
        sys.exit(code)

    return run
