"""Commands that other packages add to ``dask``.

Three sources, in this order of precedence (built-ins beat all of them):

1. entry points in the group ``dask_cli`` that load to a click command
   (how dask-ctl adds ``dask cluster`` and dask-cuda ``dask cuda``);
2. entry points in the group ``dask_cli.argparse`` that load to a function
   ``main(argv: list[str]) -> int | None`` which may call ``sys.exit``
   (how an argparse tool such as dask-yarn maps in as ``dask yarn``);
3. an executable ``dask-NAME`` on PATH runs as ``dask NAME`` (as git does).

Nothing is imported to list them (not even ``importlib.metadata``, thanks to a
cached index, see below): ``--help`` shows where each comes from, and a plugin is
loaded only when it is invoked. A plugin that fails to load becomes a
command that prints one line and exits 1; the rest of the CLI keeps working.
Conflicts resolve deterministically and never silently: a built-in beats a plugin
of the same name, and between two packages the first by package name wins; both
cases print a one-line notice naming the package that was ignored.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import click

CLICK_GROUP = "dask_cli"
ARGPARSE_GROUP = "dask_cli.argparse"
PATH_PREFIX = "dask-"

# distributed registers these in the ``dask_cli`` group; our built-ins wrap them,
# so they are expected to be shadowed and deserve no notice.
SUPERSEDED_PREFIX = "distributed.cli."


@dataclass(frozen=True)
class PluginEntryPoint:
    """One entry point of our groups, as recorded in the index (nothing imported)."""

    name: str
    value: str  # "module:attribute"
    group: str
    package: str  # the distribution that declares it
    summary: str  # that distribution's one-line summary, from its metadata

    def load(self) -> Any:
        """Import the object, exactly as ``importlib.metadata.EntryPoint.load`` does."""
        from importlib.metadata import EntryPoint

        return EntryPoint(self.name, self.value, self.group).load()


@dataclass(frozen=True)
class PluginCommand:
    """A command found outside dask-cli, described without importing it."""

    name: str
    kind: Literal["click", "argparse", "path"]
    source: str  # the distribution that provides it, or the executable's path
    entry_point: PluginEntryPoint | None = None

    @property
    def short_help(self) -> str:
        """The package's one-line summary (read from its metadata, nothing imported)."""
        if self.kind == "path":
            return f"Runs {self.source}."
        summary = self.entry_point.summary if self.entry_point else ""
        if summary:
            return f"{summary.rstrip('.')}. [{self.source}]"
        return f"From the package {self.source}."


# -- the entry-point index ---------------------------------------------------------
#
# ``importlib.metadata`` costs ~25 ms to import (it pulls in the email package) and
# scanning every installed distribution costs more: together a third of the
# start-up time of ``dask --help``. The index of our two groups is therefore cached
# in a small JSON file per interpreter and sys.path, valid while ``sys.path`` and the
# modification times of its entries are unchanged (installing, removing or
# upgrading a distribution rewrites its site-packages directory, which changes that
# directory's mtime). stevedore caches entry points for the same reason, the same way.


def _cache_file() -> str:
    import zlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    # One file per interpreter and search path, so that `dask`, `python -m dask_cli`
    # and a PYTHONPATH do not overwrite each other's index.
    tag = f"{zlib.crc32(os.pathsep.join([sys.executable, *sys.path]).encode()):08x}"
    return os.path.join(base, "dask-cli", f"entry-points-{tag}.json")


def _cache_key() -> list[str]:
    key = [sys.version, sys.executable]
    for entry in sys.path:
        try:
            key.append(f"{entry}|{os.stat(entry or '.').st_mtime_ns}")
        except OSError:
            key.append(f"{entry}|-")
    return key


def scan_entry_points() -> dict[str, list[list[str]]]:
    """Read our two entry-point groups from the installed distributions' metadata."""
    from importlib.metadata import entry_points

    index: dict[str, list[list[str]]] = {}
    for group in (CLICK_GROUP, ARGPARSE_GROUP):
        rows = []
        for ep in entry_points(group=group):
            dist = getattr(ep, "dist", None)
            package = dist.name if dist is not None else ep.value.split(":")[0].split(".")[0]
            summary = ""
            if dist is not None:
                lines = (dist.metadata.get("Summary") or "").strip().splitlines()
                summary = lines[0] if lines else ""
            rows.append([ep.name, ep.value, package, summary])
        index[group] = sorted(rows, key=lambda row: (row[0], row[2]))
    return index


@functools.cache
def _index() -> dict[str, list[list[str]]]:
    path, key = _cache_file(), _cache_key()
    try:
        with open(path, encoding="utf-8") as file:
            cached = json.load(file)
        if cached.get("key") == key:
            return cached["index"]
    except (OSError, ValueError, AttributeError):
        pass
    index = scan_entry_points()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as file:
            json.dump({"key": key, "index": index}, file)
        os.replace(partial, path)
    except OSError:
        pass  # a read-only home only costs speed
    return index


def _all_entry_points(group: str) -> tuple[PluginEntryPoint, ...]:
    """Every entry point of ``group``, sorted by (name, package) so that duplicates
    resolve the same way on every machine."""
    return tuple(PluginEntryPoint(row[0], row[1], group, row[2], row[3]) for row in _index()[group])


def _entry_points(group: str) -> tuple[PluginEntryPoint, ...]:
    """One entry point per name: the first distribution by name wins, never "the last loaded"."""
    seen: dict[str, PluginEntryPoint] = {}
    for ep in _all_entry_points(group):
        seen.setdefault(ep.name, ep)
    return tuple(seen.values())


@functools.cache
def _path_commands(search_path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for directory in search_path.split(os.pathsep):
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        for filename in sorted(names):
            if not filename.startswith(PATH_PREFIX) or len(filename) == len(PATH_PREFIX):
                continue
            path = os.path.join(directory, filename)
            name = filename[len(PATH_PREFIX) :]
            if name not in found and os.access(path, os.X_OK) and not os.path.isdir(path):
                found[name] = path
    return found


def discover(builtins: Mapping[str, object]) -> dict[str, PluginCommand]:
    """Every plugin command whose name no built-in takes, without importing any."""
    found: dict[str, PluginCommand] = {}
    for ep in _entry_points(CLICK_GROUP):
        if ep.name not in builtins:
            found[ep.name] = PluginCommand(ep.name, "click", ep.package, ep)
    for ep in _entry_points(ARGPARSE_GROUP):
        if ep.name not in builtins and ep.name not in found:
            found[ep.name] = PluginCommand(ep.name, "argparse", ep.package, ep)
    for name, path in _path_commands(os.environ.get("PATH", "")).items():
        if name not in builtins and name not in found:
            found[name] = PluginCommand(name, "path", path)
    return found


def ignored_plugins(builtins: Mapping[str, object]) -> list[tuple[PluginCommand, str]]:
    """Plugins that lose to something else, with the reason (distributed's own excepted).

    A plugin loses when a built-in has its name, or when another package that sorts
    first already provides a command of that name.
    """
    result: list[tuple[PluginCommand, str]] = []
    winners: dict[str, str] = {}
    for group, kind in ((CLICK_GROUP, "click"), (ARGPARSE_GROUP, "argparse")):
        for ep in _all_entry_points(group):
            if ep.value.startswith(SUPERSEDED_PREFIX):
                continue
            plugin = PluginCommand(ep.name, kind, ep.package, ep)
            if ep.name in builtins:
                result.append((plugin, "dask-cli has a built-in command of that name"))
            elif ep.name in winners and winners[ep.name] != plugin.source:
                result.append((plugin, f"the package {winners[ep.name]} provides it too"))
            else:
                winners.setdefault(ep.name, plugin.source)
    return result


_warned: set[tuple[str, str]] = set()


def warn_about_ignored(builtins: Mapping[str, object], only: str | None = None) -> None:
    """One line on stderr per ignored plugin (once per process): never a silent override."""
    for plugin, reason in ignored_plugins(builtins):
        if only is not None and plugin.name != only:
            continue
        if (plugin.name, plugin.source) in _warned:
            continue
        _warned.add((plugin.name, plugin.source))
        from dask_cli.output import notice

        notice(
            f"Notice: ignoring the '{plugin.name}' command from the package "
            f"{plugin.source}: {reason}."
        )


def load(name: str, builtins: Mapping[str, object]) -> click.Command | None:
    """The click command for plugin ``name``, or None when there is none."""
    plugin = discover(builtins).get(name)
    if plugin is None:
        return None
    if plugin.kind == "path":
        return PassthroughCommand(name, _exec_path(plugin.source), short_help=plugin.short_help)
    assert plugin.entry_point is not None
    try:
        loaded = plugin.entry_point.load()
    except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's, not ours
        return _broken_command(
            name, f"the package {plugin.source} failed to load it: {_one_line(exc)}"
        )
    if plugin.kind == "argparse":
        if not callable(loaded):
            return _broken_command(
                name,
                f"the package {plugin.source} registered {plugin.entry_point.value}, "
                "which is not callable",
            )
        return PassthroughCommand(
            name, _call_argparse_main(name, loaded), short_help=plugin.short_help
        )
    if not isinstance(loaded, click.Command):
        return _broken_command(
            name,
            f"the package {plugin.source} registered {plugin.entry_point.value}, "
            f"which is a {type(loaded).__name__}, not a click command",
        )
    return loaded


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class PassthroughCommand(click.Command):
    """A command that hands its arguments to ``run`` exactly as typed.

    Nothing is parsed: not ``--help``, not ``--``. The tool behind it (an argparse
    ``main`` or a ``dask-NAME`` executable) sees the same argv it would see alone.
    """

    def __init__(self, name: str, run: Callable[[list[str]], None], short_help: str):
        super().__init__(name=name, short_help=short_help, add_help_option=False)
        self._run = run

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[f"{__name__}.argv"] = list(args)
        return []

    def invoke(self, ctx: click.Context) -> None:
        return self._run(ctx.meta.get(f"{__name__}.argv", []))


def _broken_command(name: str, reason: str) -> click.Command:
    def fail(_argv: list[str]) -> None:
        from dask_cli.errors import DaskCliError

        raise DaskCliError(f"The command 'dask {name}' is unavailable: {reason}")

    return PassthroughCommand(name, fail, short_help=f"Unavailable: {reason}")


def _exec_path(path: str) -> Callable[[list[str]], None]:
    def run(argv: list[str]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(path, [path, *argv])

    return run


def _call_argparse_main(name: str, main: Callable) -> Callable[[list[str]], None]:
    def run(argv: list[str]) -> None:
        saved = sys.argv
        # argparse takes its program name from sys.argv[0]: usage lines read "dask NAME".
        sys.argv = [f"dask {name}", *argv]
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.argv = saved
        sys.exit(code)

    return run
