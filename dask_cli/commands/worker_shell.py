"""``dask worker shell NAME|ADDRESS [-c CODE] [SCRIPT]``: Python inside a worker."""

from __future__ import annotations

import sys

import click

from dask_cli.commands.client_options import client_options
from dask_cli.commands.param_types import TARGET
from dask_cli.debug.client.name_completion import complete_worker_name


@click.command()
@click.argument("target", metavar="NAME|ADDRESS", type=TARGET, shell_complete=complete_worker_name)
@click.argument("script", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-c", "code", metavar="CODE", help="Run CODE and exit (no REPL).")
@client_options
@click.pass_context
def shell(ctx: click.Context, settings, target: str, script: str | None, code: str | None) -> None:
    """Python shell inside the worker NAME (a name, an address or a prefix).

    Interactive unless -c CODE or SCRIPT is given, or stdin is not a terminal;
    then the code runs as a script, its output streams here, and the exit status
    is 1 if it raised. In the shell: worker, data, tasks(), logs(), stacks(),
    story(key); top-level await runs on the worker's event loop; exit() leaves
    (the worker keeps running).
    """
    import asyncio  # here, not at the top: `--help` must not pay for asyncio

    from dask_cli import output
    from dask_cli.debug.client import api, runner

    source = runner.read_source(code, script, sys.stdin)

    async def shell_address() -> str:
        with output.Spinner(f"Connecting to {target}"):
            return await api.shell_address(settings, target)

    ctx.exit(asyncio.run(runner.shell(settings, shell_address, source)))
