"""``dask worker debug [KEY|NAME]``: tasks paused at ``breakpoint()``, and pdb on one."""

from __future__ import annotations

import asyncio

import click

from dask_cli.commands.client_options import client_options

COLUMNS = ("key", "worker", "where", "function", "since", "attached")


@click.command("debug")
@click.argument("target", required=False, metavar="[KEY|NAME]")
@click.option("--json", "as_json", is_flag=True, help="List paused tasks as JSON.")
@client_options
@click.pass_context
def debug(ctx: click.Context, settings, target: str | None, as_json: bool) -> None:
    """List the tasks paused at breakpoint() across the cluster, or attach pdb to one.

    KEY is a task's key or an unambiguous prefix of it; NAME a worker with one paused
    task. In the session: p, pp, where, up, down, list, next, step, Tab completes the
    frame's names; continue, quit or Ctrl-D resume the task, kill stops it. Ctrl-C at
    the prompt discards the line, as in pdb; while pdb runs the task (next, step...)
    it detaches, the task going on. With stdin not a terminal, pdb commands are read
    from it, one per line.
    """
    from dask_cli import output
    from dask_cli.debug.client import debugger
    from dask_cli.errors import DaskCliError

    if target is None:
        pauses = asyncio.run(debugger.paused_tasks(settings))
        if as_json:
            output.print_json([p.to_dict() for p in pauses])
        elif not pauses:
            output.notice("No task is paused at breakpoint() in this cluster")
        else:
            rows = [
                (p.key, p.worker, p.where, p.function, debugger.ago(p.since), p.attached)
                for p in pauses
            ]
            noun = "paused task" if len(rows) == 1 else "paused tasks"
            output.print_table(COLUMNS, rows, title=f"{len(rows)} {noun}")
        return
    if as_json:
        raise DaskCliError("--json lists paused tasks: give no KEY with it", exit_code=2)
    try:
        status = asyncio.run(debugger.attach(settings, target))
    except KeyboardInterrupt:
        # Ctrl-C before the session began (finding the pause, connecting to its worker):
        # nothing was claimed, so the task waits for the next debugger.
        output.notice("Interrupted before attaching: the task stays paused")
        status = debugger.INTERRUPTED_EXIT
    ctx.exit(status)
