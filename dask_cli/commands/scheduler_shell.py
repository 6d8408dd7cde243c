"""``dask scheduler shell [-c CODE] [SCRIPT]``: Python inside the running scheduler."""

from __future__ import annotations

import sys

import click

from dask_cli.commands.client_options import client_options


@click.command()
@click.argument("script", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-c", "code", metavar="CODE", help="Run CODE and exit (no REPL).")
@client_options
@click.pass_context
def shell(ctx: click.Context, settings, script: str | None, code: str | None) -> None:
    """Python shell inside the scheduler (`scheduler` in the namespace).

    Non-interactive with -c CODE, a SCRIPT, or code on stdin; exit status 1 if it
    raised. exit() leaves; the scheduler keeps running.
    """
    import asyncio  # here, not at the top: `--help` must not pay for asyncio

    from dask_cli import output
    from dask_cli.debug.client import api, runner

    source = runner.read_source(code, script, sys.stdin)

    async def shell_address() -> str:
        with output.Spinner("Connecting to the scheduler"):
            return await api.shell_address(settings, None)

    ctx.exit(asyncio.run(runner.shell(settings, shell_address, source)))
