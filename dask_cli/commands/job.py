"""``dask job submit|gather|logs|status|list|cancel``: scripts run as tasks, by key."""

from __future__ import annotations

import asyncio
import datetime
import sys
from typing import Any

import click

from dask_cli.commands.client_options import client_options

LIST_COLUMNS = ("key", "name", "state", "worker", "submitted", "duration", "exit status")
NO_JOBS = "No jobs on this cluster; submit one with `dask job submit SCRIPT`."


@click.group()
def job() -> None:
    """Run a Python script on the cluster as a task; fetch its output later by key.

    The script runs as its own subprocess on a worker, with DASK_SCHEDULER_ADDRESS
    set (so `Client()` in it joins the cluster). Its record and output stay on the
    cluster: submit, exit, and `dask job gather KEY` from anywhere.
    """


def _quiet_client_close() -> None:
    """distributed logs its Client's close race (the scheduler closing the stream while
    the client's batched send still writes) as an INFO traceback: not for our users."""
    import logging

    logging.getLogger("distributed.batched").setLevel(logging.WARNING)


def _write(stream: str, data: bytes) -> None:
    """Job output, as the bytes came. A closed pipe (``| head``) ends the command
    quietly with status 141, as a shell's SIGPIPE would; the job itself goes on."""
    out = sys.stderr if stream == "stderr" else sys.stdout
    try:
        out.buffer.write(data)
        out.flush()
    except BrokenPipeError:
        import os

        # Nothing may write to the closed pipe again, not even the exit's flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        raise click.exceptions.Exit(141) from None


def _pairs(values: tuple[str, ...], option: str, number: bool = False) -> dict:
    found: dict = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint=option)
        if number:
            try:
                found[name] = float(text)
            except ValueError:
                raise click.BadParameter(
                    f"{value!r}: {text!r} is not a number", param_hint=option
                ) from None
        else:
            found[name] = text
    return found


def _exit_for(record) -> int:
    from dask_cli import output
    from dask_cli.jobs import protocol

    if record.state == protocol.CANCELLED:
        output.notice(f"Job {record.key} was cancelled.")
    elif record.state == protocol.FAILED and record.exit_code in (None, 0):
        output.report_error(f"Job {record.key} FAILED: {record.reason}")
    return protocol.exit_status(record)


@job.command(context_settings={"ignore_unknown_options": False})
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[-- ARGS]...")
@click.option(
    "--wait", "--block", "wait", is_flag=True, help="Stream the output; exit with its status."
)
@click.option("--name", help="A name for the job [default: the script's name].")
@click.option("--worker", metavar="NAME|ADDRESS", help="Run on this worker only.")
@click.option(
    "--resources", multiple=True, metavar="R=N", help="Resources the job holds while it runs."
)
@click.option("--env", multiple=True, metavar="K=V", help="Environment variable for the script.")
@click.option(
    "--working-dir",
    type=click.Path(exists=True, file_okay=False),
    help="Ship this directory (size-limited) and run the script inside it.",
)
@client_options
@click.pass_context
def submit(
    ctx: click.Context,
    settings,
    script: str,
    args: tuple[str, ...],
    wait: bool,
    name: str | None,
    worker: str | None,
    resources: tuple[str, ...],
    env: tuple[str, ...],
    working_dir: str | None,
) -> None:
    """Run SCRIPT with ARGS as a job on a worker; print its key.

    With --wait, stream its stdout and stderr as they come and exit with its exit
    status; Ctrl-C then asks whether to cancel it (without a terminal it keeps
    running).
    """
    from dask_cli import output
    from dask_cli.jobs import client

    _quiet_client_close()
    request = client.SubmitRequest(
        script=script,
        args=list(args),
        name=name,
        worker=worker,
        resources=_pairs(resources, "--resources", number=True),
        env=_pairs(env, "--env"),
        working_dir=working_dir,
    )
    if not wait:
        submitted = asyncio.run(client.submit(settings, request))
        for note in submitted.notes:
            output.notice(note)
        click.echo(submitted.record.key)
        return
    keys: list[str] = []

    def on_submitted(submitted) -> None:
        keys.append(submitted.record.key)
        for note in submitted.notes:
            output.notice(note)
        output.notice(f"Job {submitted.record.key} submitted; waiting for it (Ctrl-C to detach).")

    try:
        record = asyncio.run(client.submit_and_follow(settings, request, on_submitted, _write))
    except KeyboardInterrupt:
        if not keys:
            ctx.exit(130)
        ctx.exit(_interrupted(settings, keys[0]))
    ctx.exit(_exit_for(record))


def _interrupted(settings, key: str) -> int:
    """Ctrl-C under --wait: cancel the job or leave it running (no terminal: leave it)."""
    from dask_cli import output
    from dask_cli.jobs import client

    cancel = False
    if sys.stdin.isatty():
        try:
            cancel = click.confirm(f"\nCancel job {key}?", default=False, err=True)
        except (click.Abort, KeyboardInterrupt, EOFError):
            cancel = False
    if cancel:
        result = asyncio.run(client.cancel(settings, key))
        output.notice(f"Job {key} is {result.record.state}.")
        return 130
    output.notice(
        f"Job {key} keeps running. Follow it with `dask job logs -f {key}`, "
        f"stop it with `dask job cancel {key}`."
    )
    return 130


@job.command()
@click.argument("key")
@click.option("--stderr", "with_stderr", is_flag=True, help="Also print its stderr (on stderr).")
@click.option("--no-wait", is_flag=True, help="Fail if the job has not ended yet.")
@client_options
@click.pass_context
def gather(ctx: click.Context, settings, key: str, with_stderr: bool, no_wait: bool) -> None:
    """Print the job's whole stdout (waiting for it to end); exit with its exit status."""
    from dask_cli.jobs import client, protocol

    streams = protocol.STREAMS if with_stderr else (protocol.STDOUT,)
    record = asyncio.run(client.gather(settings, key, streams, _write, wait=not no_wait))
    ctx.exit(_exit_for(record))


@job.command()
@click.argument("key")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
@client_options
def logs(settings, key: str, follow: bool) -> None:
    """The job's output so far: stdout on stdout, stderr on stderr."""
    from dask_cli import output
    from dask_cli.jobs import client, protocol

    record = asyncio.run(client.logs(settings, key, _write, follow_output=follow))
    if record.state == protocol.PENDING:
        output.notice(f"Job {key} is PENDING: no output yet.")


def _when(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _duration(record) -> str | None:
    from dask.utils import format_time

    seconds = record.duration()
    return None if seconds is None else format_time(seconds)


def _exit_text(record) -> str | None:
    from dask_cli.jobs import protocol

    return protocol.describe_exit(record.exit_code)


@job.command()
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@client_options
def status(settings, key: str, as_json: bool) -> None:
    """The job's state, worker, times, exit status and, when it failed, why."""
    from dask_cli import output
    from dask_cli.jobs import client

    record = asyncio.run(client.status(settings, key))
    if as_json:
        output.print_json(record.to_dict())
        return
    worker = record.worker_name and f"{record.worker_name} ({record.worker})"
    fields = [
        ("key", record.key),
        ("name", record.name),
        ("state", record.state),
        ("script", " ".join([record.script, *record.args])),
        ("worker", worker),
        ("pid", record.pid),
        ("submitted", _when(record.submitted)),
        ("started", _when(record.started)),
        ("duration", _duration(record)),
        ("exit status", _exit_text(record)),
        ("reason", record.reason if record.reason != _exit_text(record) else None),
    ]
    for label, value in fields:
        if value is not None:
            click.echo(f"{label + ':':13}{value}")


@job.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@client_options
def list_jobs(settings, as_json: bool) -> None:
    """The jobs the scheduler remembers, oldest first."""
    from dask_cli import output
    from dask_cli.jobs import client

    records = asyncio.run(client.list_jobs(settings))
    output.print_records(
        records, LIST_COLUMNS, _list_row, noun="job", as_json=as_json, empty=NO_JOBS
    )


def _list_row(r: Any) -> tuple[Any, ...]:
    """A ``JobRecord``'s cells under ``LIST_COLUMNS``."""
    return (
        r.key,
        r.name,
        r.state,
        r.worker_name,
        _when(r.submitted),
        _duration(r),
        _exit_text(r),
    )


@job.command()
@click.argument("key")
@client_options
def cancel(settings, key: str) -> None:
    """Stop the job: its process and the processes it started (SIGTERM, then SIGKILL)."""
    from dask_cli import output
    from dask_cli.errors import DaskCliError
    from dask_cli.jobs import client

    result = asyncio.run(client.cancel(settings, key))
    if result.already_done:
        output.notice(f"Job {key} had already ended: {result.record.state}.")
        return
    if not result.record.done:
        raise DaskCliError(
            f"Job {key} is still {result.record.state}: its worker "
            f"{result.record.worker_name} did not stop it in time",
            hint=f"`dask job status {key}` shows when it ends.",
        )
    click.echo(f"Job {key} is {result.record.state}.")
