"""The root `dask` command: fast help, versions, the whole command tree, errors, completion."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version

import click
import pytest
from click.testing import CliRunner

from dask_cli.cli import cli
from dask_cli.lazy import LazyGroup
from dask_cli.testing import probe_imports, run_dask

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["worker", "--help"],
        ["scheduler", "--help"],
        ["worker", "shell", "--help"],
    ],
    ids=" ".join,
)
def test_fast_paths_do_not_import_heavy_modules(args):
    probe = probe_imports(*args)
    assert "Usage:" in probe.output or "dask-cli" in probe.output
    assert probe.heavy_modules == [], f"`dask {' '.join(args)}` imported {probe.heavy_modules}"


def test_version_names_all_three_packages():
    result = run_dask("--version")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"dask-cli {version('dask-cli')}",
        f"dask {version('dask')}",
        f"distributed {version('distributed')}",
    ]


def test_help_lists_builtins():
    result = run_dask("--help")
    assert result.returncode == 0
    # distributed's own scheduler/worker/ssh/spec entry points are wrapped: no notice.
    assert "Notice" not in result.stderr
    for name in ("scheduler", "worker", "spec", "ssh", "info", "config", "docs", "completion"):
        assert f"\n  {name} " in result.stdout


def test_python_m_dask_cli_and_console_script_agree():
    script = os.path.join(os.path.dirname(sys.executable), "dask")
    if not os.path.exists(script):
        pytest.skip("the `dask` console script is not installed next to this interpreter")
    via_script = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert via_script.returncode == 0
    assert via_script.stdout == run_dask("--version").stdout


def test_unknown_command_is_a_usage_error():
    result = run_dask("no-such-command")
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
    assert "Traceback" not in result.stderr


def _walk(group: click.Group, path: tuple[str, ...], ctx: click.Context, failures: dict):
    """Yield every command path below ``group``; record those that cannot be loaded."""
    names = group.lazy_subcommands if isinstance(group, LazyGroup) else group.list_commands(ctx)
    for name in names:
        full = (*path, name)
        try:
            command = group.get_command(ctx, name)
        except Exception as exc:  # noqa: BLE001 - reported below, per command
            failures[" ".join(full)] = f"cannot be loaded: {exc!r}"
            continue
        if command is None:
            failures[" ".join(full)] = "does not exist"
            continue
        yield full
        if isinstance(command, click.Group):
            with click.Context(command, info_name=name, parent=ctx) as sub_ctx:
                yield from _walk(command, full, sub_ctx, failures)


def test_every_command_and_subcommand_has_help():
    """Walk the whole tree of built-in commands (imports each lazy one) and ask for help."""
    runner = CliRunner()
    failures: dict[str, str] = {}
    with click.Context(cli, info_name="dask") as ctx:
        paths = list(_walk(cli, (), ctx, failures))
    assert ("worker", "start") in paths and ("info", "versions") in paths
    for path in paths:
        result = runner.invoke(cli, [*path, "--help"], prog_name="dask")
        if result.exit_code != 0 or "Usage: dask" not in result.output:
            failures[" ".join(path)] = result.output or repr(result.exception)
    assert failures == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "--bogus"], "No such option '--bogus'"),
        (["info", "nope"], "No such command 'nope'"),
        (["config", "get"], "Missing argument 'KEY'"),
        (["config", "set", "only-a-key"], "Missing argument 'VALUE'"),
        (["completion", "tcsh"], "'tcsh' is not one of 'bash', 'zsh', 'fish'"),
        (["completion"], "Missing argument"),
        (["docs", "extra"], "Got unexpected extra argument"),
        (["--bogus"], "No such option '--bogus'"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_usage_errors_exit_2_with_clicks_message(args, message):
    result = CliRunner().invoke(cli, args, prog_name="dask")
    assert result.exit_code == 2
    assert message in result.output
    assert "Usage: dask" in result.output


def test_usage_error_through_the_real_command():
    result = run_dask("completion", "tcsh")
    assert result.returncode == 2
    assert "Error: Invalid value" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", "_DASK_COMPLETE=bash_complete"),
        ("zsh", "compdef _dask_completion dask"),
        ("fish", "complete --no-files --command dask"),
    ],
)
def test_completion_prints_clicks_script(shell, expected):
    result = run_dask("completion", shell)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def _complete(words: str, cword: int) -> list[str]:
    result = run_dask(
        env={"_DASK_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    )
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_completion_really_completes():
    assert _complete("dask wor", 1) == ["worker"]
    assert _complete("dask worker sh", 2) == ["shell"]
    assert {"start", "shell", "list"} <= set(_complete("dask worker ", 2))
    assert set(_complete("dask info ", 2)) == {"config", "versions"}
    assert _complete("dask completion f", 2) == ["fish"]


def test_docs_prints_the_url_without_a_browser():
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")
    }
    # Only the interpreter's directory on PATH: no console browser (lynx, w3m) either.
    env["PATH"] = os.path.dirname(sys.executable)
    result = subprocess.run(
        [sys.executable, "-m", "dask_cli", "docs"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "https://docs.dask.org\n"
