"""Plugins from other packages: entry points (click and argparse) and `dask-NAME` on PATH.

The test distributions under ``tests/plugin_fixtures/`` are plain ``*.dist-info``
directories and modules (no pip): copied to a temporary directory and put on
PYTHONPATH of a real ``dask`` subprocess, they are found as installed packages.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from dask_cli.testing import run_dask

FIXTURES = Path(__file__).parent / "plugin_fixtures"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """Environment in which the test packages are installed and `dask-foo` is on PATH."""
    root = tmp_path_factory.mktemp("plugins")
    shutil.copytree(FIXTURES / "site", root / "site")
    shutil.copytree(FIXTURES / "bin", root / "bin")
    script = root / "bin" / "dask-foo"
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {
        "PYTHONPATH": str(root / "site"),
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "DASK_CLI_TEST_IMPORT_MARKER": str(root / "hello-imported"),
        "XDG_CACHE_HOME": str(root / "cache"),  # the entry-point index cache
    }


def _marker(env: dict[str, str]) -> Path:
    return Path(env["DASK_CLI_TEST_IMPORT_MARKER"])


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_help_lists_plugins_without_importing_them(plugin_env):
    _marker(plugin_env).unlink(missing_ok=True)
    result = run_dask("--help", env=plugin_env)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {"hello", "crash", "broken", "yarnish", "foo", "worker", "info"} <= listed
    assert "Says hello, a well-behaved test plugin. [dask-cli-hello]" in result.stdout
    assert not _marker(plugin_env).exists(), "--help imported the plugin module"
    # Built-ins win, with one notice naming the package; distributed's own
    # scheduler/worker/ssh/spec entry points are wrapped by ours and stay quiet.
    assert (
        "ignoring the 'info' command from the package dask-cli-shadow: "
        "dask-cli has a built-in command of that name" in result.stderr
    )
    assert "distributed" not in result.stderr
    # Between two packages, the first by name wins, also with a notice.
    assert "ignoring the 'hello' command from the package dask-cli-zhello" in result.stderr


def test_click_plugin_loads_when_used(plugin_env):
    _marker(plugin_env).unlink(missing_ok=True)
    result = run_dask("hello", "--name", "plugin", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello plugin\n"
    assert _marker(plugin_env).exists()


def test_broken_plugin_is_one_line_and_breaks_nothing_else(plugin_env):
    result = run_dask("broken", "--some-arg", env=plugin_env)
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in _lines(result.stderr) if not line.startswith("Notice:")]
    assert len(errors) == 1, result.stderr
    assert "dask broken" in errors[0] and "dask-cli-broken" in errors[0]
    assert "install_signal_handlers" in errors[0]
    assert "Traceback" not in result.stderr
    # Everything else keeps working next to it.
    assert run_dask("hello", env=plugin_env).stdout == "hello world\n"
    assert run_dask("--help", env=plugin_env).returncode == 0


def test_builtin_wins_over_a_plugin_of_the_same_name(plugin_env):
    result = run_dask("info", "versions", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert "shadow info ran" not in result.stdout
    assert '"dask-cli"' in result.stdout
    notices = [line for line in _lines(result.stderr) if "'info'" in line]
    assert len(notices) == 1 and "dask-cli-shadow" in notices[0]


def test_argparse_tool_gets_argv_stdin_and_exit_code_untouched(plugin_env):
    result = run_dask(
        "yarnish", "--flag", "x", "--", "--not-ours", input="from stdin\n", env=plugin_env
    )
    assert result.returncode == 3, result.stderr
    assert "prog=dask yarnish" in result.stdout
    assert "argv=['--flag', 'x', '--', '--not-ours']" in result.stdout
    assert "flag=x" in result.stdout
    assert "stdin='from stdin\\n'" in result.stdout


def test_argparse_tool_owns_its_help(plugin_env):
    result = run_dask("yarnish", "--help", env=plugin_env)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: dask yarnish")


def test_path_executable_runs_as_subcommand(plugin_env):
    result = run_dask("foo", "a b", "--b", "--", "-h", input="piped", env=plugin_env)
    assert result.returncode == 4, result.stderr
    assert result.stdout == "arg=a b\narg=--b\narg=--\narg=-h\nstdin=piped\n"


def test_unexpected_exception_is_one_line(plugin_env):
    result = run_dask("crash", env=plugin_env)
    assert result.returncode == 1
    assert _lines(result.stderr)[0] == "Error: RuntimeError: boom"
    assert "Traceback" not in result.stderr

    assert "Run with --traceback" in result.stderr
    for shown in (
        run_dask("--traceback", "crash", env=plugin_env),
        run_dask("crash", env={**plugin_env, "DASK_CLI__TRACEBACK": "true"}),
    ):
        assert shown.returncode == 1
        assert "Traceback (most recent call last)" in shown.stderr
        assert "RuntimeError: boom" in shown.stderr


def test_discover_does_not_import(plugin_env, monkeypatch):
    """The discovery function itself, in-process: data about plugins, nothing imported."""
    import importlib
    import sys

    from dask_cli import plugins
    from dask_cli.cli import BUILTIN_COMMANDS

    monkeypatch.syspath_prepend(plugin_env["PYTHONPATH"])
    monkeypatch.setenv("PATH", plugin_env["PATH"])
    importlib.invalidate_caches()
    plugins._index.cache_clear()
    try:
        found = plugins.discover(BUILTIN_COMMANDS)
        assert found["hello"].kind == "click" and found["hello"].source == "dask-cli-hello"
        assert found["yarnish"].kind == "argparse"
        assert found["foo"].kind == "path"
        assert "info" not in found and "worker" not in found
        ignored = {(p.name, p.source) for p, _ in plugins.ignored_plugins(BUILTIN_COMMANDS)}
        assert ignored == {("info", "dask-cli-shadow"), ("hello", "dask-cli-zhello")}
        assert "dask_cli_hello" not in sys.modules
    finally:
        plugins._index.cache_clear()


def test_entry_point_index_is_cached_and_notices_new_packages(plugin_env, tmp_path):
    """The index is read from the cache while nothing changes, rebuilt when a package
    is added (its site directory's mtime changes) and when sys.path changes."""
    site = tmp_path / "site"
    shutil.copytree(FIXTURES / "site", site)
    env = {**plugin_env, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    first = run_dask("--help", env=env)
    assert "hello" in first.stdout and "later" not in first.stdout
    (cache_file,) = (tmp_path / "cache" / "dask-cli").iterdir()
    assert "dask-cli-hello" in cache_file.read_text()

    # A stale index on disk with the current key would be used: prove it is read.
    cached = json.loads(cache_file.read_text())
    cached["index"]["dask_cli"].append(["phantom", "nowhere:cli", "phantom-pkg", "Phantom"])
    cache_file.write_text(json.dumps(cached))
    assert "phantom" in run_dask("--help", env=env).stdout

    # Installing a package changes the directory it lands in: the index is rebuilt.
    dist = site / "dask_cli_later-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dask-cli-later\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[dask_cli]\nlater = dask_cli_hello:hello\n")
    os.utime(site, ns=(time.time_ns() + 10**9,) * 2)  # coarse-mtime filesystems
    rebuilt = run_dask("--help", env=env)
    assert "later" in rebuilt.stdout and "phantom" not in rebuilt.stdout
    assert run_dask("later", "--name", "x", env=env).stdout == "hello x\n"
