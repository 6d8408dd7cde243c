"""`dask worker` / `dask scheduler` are groups whose default subcommand is `start`.

A first token that is not a subcommand name means `start` (so `dask worker
tcp://host:8786 --nthreads 2` keeps working), `start` forces it, `--help` shows the
group, and the group's help stays fast: it imports no distributed.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from dask_cli.cli import cli
from dask_cli.lazy import DefaultLazyGroup
from dask_cli.testing import probe_imports


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args, subcommands",
    [
        (("worker", "--help"), ("start", "shell", "list")),
        (("worker", "-h"), ("start", "shell", "list")),
        (("scheduler", "--help"), ("start", "shell")),
    ],
)
def test_group_help_lists_subcommands_without_importing_distributed(args, subcommands):
    probe = probe_imports(*args)
    assert (probe.exit_code, probe.heavy_modules) == (0, [])
    output = probe.output
    assert f"Usage: dask {args[0]} [OPTIONS] COMMAND [ARGS]..." in output
    for name in subcommands:
        assert f"  {name} " in output


def make_group() -> tuple[click.Group, list[tuple[str, dict]]]:
    """A DefaultLazyGroup like `dask worker`: `start` (the default) and `shell`."""
    calls: list[tuple[str, dict]] = []

    @click.group(cls=DefaultLazyGroup, default_command="start")
    def group() -> None:
        """The group's own help."""

    @group.command(context_settings={"ignore_unknown_options": True})
    @click.argument("scheduler", required=False)
    @click.option("--nthreads", type=int, default=0)
    @click.argument("rest", nargs=-1, type=click.UNPROCESSED)
    def start(**kwargs) -> None:
        """Start help."""
        calls.append(("start", kwargs))

    @group.command()
    @click.argument("name")
    def shell(**kwargs) -> None:
        """Shell help."""
        calls.append(("shell", kwargs))

    return group, calls


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["tcp://127.0.0.1:8786", "--nthreads", "2"],
            ("start", {"scheduler": "tcp://127.0.0.1:8786", "nthreads": 2, "rest": ()}),
        ),
        (
            ["--nthreads", "2", "tcp://127.0.0.1:8786"],
            ("start", {"scheduler": "tcp://127.0.0.1:8786", "nthreads": 2, "rest": ()}),
        ),
        (
            ["start", "tcp://127.0.0.1:8786"],
            ("start", {"scheduler": "tcp://127.0.0.1:8786", "nthreads": 0, "rest": ()}),
        ),
        ([], ("start", {"scheduler": None, "nthreads": 0, "rest": ()})),
        (
            ["--preload-arg", "x"],
            ("start", {"scheduler": "--preload-arg", "nthreads": 0, "rest": ("x",)}),
        ),
        (["shell", "w1"], ("shell", {"name": "w1"})),
    ],
)
def test_first_token_routes_to_start_unless_it_names_a_subcommand(args, expected):
    group, calls = make_group()
    result = CliRunner().invoke(group, args)
    assert result.exit_code == 0, result.output
    assert calls == [expected]


@pytest.mark.parametrize(
    "args, shown",
    [
        (["--help"], "The group's own help."),
        (["start", "--help"], "Start help."),
        (["tcp://127.0.0.1:8786", "--help"], "Start help."),
        (["shell", "--help"], "Shell help."),
    ],
)
def test_help_of_group_and_of_subcommands(args, shown):
    group, calls = make_group()
    result = CliRunner().invoke(group, args)
    assert result.exit_code == 0, result.output
    assert shown in result.output
    assert calls == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args",
    [
        ["worker", "start", "--help"],
        ["worker", "tcp://127.0.0.1:8786", "--help"],
        ["worker", "--nthreads", "2", "--help"],
    ],
)
def test_worker_start_help_through_the_group(args):
    result = CliRunner().invoke(cli, args, prog_name="dask")
    assert result.exit_code == 0, result.output
    assert "Usage: dask worker start [OPTIONS] [SCHEDULER] [PRELOAD_ARGV]..." in result.output
    assert "--keepalive / --no-keepalive" in result.output


@pytest.mark.timeout(60)
def test_scheduler_start_help_through_the_group():
    result = CliRunner().invoke(cli, ["scheduler", "start", "--help"], prog_name="dask")
    assert result.exit_code == 0, result.output
    assert "Usage: dask scheduler start [OPTIONS] [PRELOAD_ARGV]..." in result.output
    assert "--shell / --no-shell" in result.output


@pytest.mark.timeout(60)
def test_usage_error_of_start_names_the_command():
    """Errors are click's, exit 2, and point at `dask worker start --help`."""
    result = CliRunner().invoke(
        cli, ["worker", "tcp://127.0.0.1:8786", "--nthreads", "x"], prog_name="dask"
    )
    assert result.exit_code == 2
    assert "Try 'dask worker start --help' for help." in result.output
