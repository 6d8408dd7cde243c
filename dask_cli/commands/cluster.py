"""``dask cluster``: named, long-running clusters that outlive the command that made them.

Thin: each subcommand parses, calls one function of :mod:`dask_cli.clusters`, prints.
This module imports neither distributed nor the clusters package at import time.
"""

from __future__ import annotations

import asyncio
import sys
import time

import click

from dask_cli.clusters.completion import complete_cluster_name

NAME = click.argument("name", metavar="NAME", shell_complete=complete_cluster_name)
LIST_COLUMNS = (
    "name",
    "kind",
    "source",
    "status",
    "scheduler",
    "workers",
    "threads",
    "memory",
    "age",
)


def _timeout(name: str, default: str) -> float:
    from dask.utils import parse_timedelta

    from dask_cli import config

    return float(parse_timedelta(config.get(name, default), default="s") or 0)


def _memory(nbytes: int | None) -> str | None:
    if not nbytes:
        return None
    from dask.utils import format_bytes

    return format_bytes(nbytes)


def _age(created: float | None) -> str | None:
    if created is None:
        return None
    seconds = max(0, int(time.time() - created))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _check_memory_limit(_ctx: click.Context, _param: click.Parameter, value: str | None):
    if value is None or value == "auto":
        return value
    from dask.utils import parse_bytes

    try:
        parse_bytes(value)
    except (ValueError, TypeError):
        raise click.BadParameter(f"{value!r} is not a size like 4GiB, 0 or auto") from None
    return value


@click.group()
def cluster() -> None:
    """Named clusters that keep running after the command returns.

    Start one (`dask cluster start NAME`), use it from any shell by name
    (`dask worker list --cluster NAME`, `Client(address)`), scale it, stop it.
    """


def _timeout_option(what: str):
    """``--timeout`` (seconds or a time string, default 120 s) for the commands that wait."""
    from dask_cli.commands.param_types import DURATION

    return click.option(
        "--timeout",
        type=DURATION,
        default=120,
        show_default=True,
        help=f"How long to wait for {what} (seconds, or a time string like 2m).",
    )


WAIT_OPTIONS = [
    click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Return once every worker has registered, or as soon as the scheduler is up.",
    ),
    _timeout_option("the cluster to start"),
    click.option(
        "--keepalive/--no-keepalive",
        default=None,
        help="Make every worker a keep-alive worker (`dask worker --keepalive`).",
    ),
]


def _wait_options(func):
    for option in reversed(WAIT_OPTIONS):
        func = option(func)
    return func


@cluster.command()
@click.argument("name", metavar="NAME")
@click.option(
    "-n", "--workers", type=click.IntRange(min=0), default=None, help="Number of workers."
)
@click.option("--nthreads", type=click.IntRange(min=1), default=None, help="Threads per worker.")
@click.option(
    "--memory-limit",
    default=None,
    callback=_check_memory_limit,
    help="Memory per worker, like 4GiB; 0 for no limit [default: auto].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Scheduler host.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Scheduler port [random].")
@click.option(
    "--dashboard-address", default=None, metavar="ADDRESS", help="Dashboard address [HOST:0]."
)
@_wait_options
def start(
    name: str,
    workers: int | None,
    nthreads: int | None,
    memory_limit: str | None,
    host: str,
    port: int,
    dashboard_address: str | None,
    wait: bool,
    timeout: float,
    keepalive: bool | None,
) -> None:
    """Start a local cluster named NAME whose processes keep running after this command.

    Every worker has the shell service (`dask worker shell W --cluster NAME`).
    """
    from dask_cli.clusters.launch import launch
    from dask_cli.clusters.spec import local_cluster_spec
    from dask_cli.clusters.state import check_name

    check_name(name)
    if workers is None:
        from distributed.deploy.utils import nprocesses_nthreads

        workers, default_threads = nprocesses_nthreads()
        nthreads = nthreads or default_threads
    spec = local_cluster_spec(name, workers, nthreads, memory_limit, host, port, dashboard_address)
    state = launch(name, spec, "dask cluster start", keepalive, wait, timeout)
    _print_started(state, workers if wait else None)


@cluster.command()
@click.option(
    "-f",
    "--file",
    "spec_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Spec file (version, module, class, args, kwargs) "
    "[default: config cli.cluster.spec, else ./dask-cluster.yaml].",
)
@click.argument("name", metavar="[NAME]", required=False)
@_wait_options
def create(
    spec_file: str | None, name: str | None, wait: bool, timeout: float, keepalive: bool | None
) -> None:
    """Start any cluster manager class from a dask-ctl style spec file as a named cluster.

    NAME defaults to the spec's `name`, else the file's name without its extension.
    """
    from dask_cli.clusters.launch import launch
    from dask_cli.clusters.spec import find_spec_file, load_spec
    from dask_cli.clusters.state import check_name

    path = find_spec_file(spec_file)
    spec, raw = load_spec(path)
    name = check_name(name or str(raw.get("name") or path.stem))
    state = launch(name, spec, str(path.resolve()), keepalive, wait, timeout)
    _print_started(state, None)


def _print_started(state, workers: int | None) -> None:
    workers_text = f", {workers} workers" if workers is not None else ""
    click.echo(
        f"Cluster {state.name!r} is running: scheduler at {state.scheduler_address}{workers_text}"
    )
    if state.dashboard_link:
        click.echo(f"  Dashboard: {state.dashboard_link}")
    click.echo(f"  Use it:    dask worker list --cluster {state.name}")
    click.echo(f"             Client({state.scheduler_address!r})")
    click.echo(f"  Stop it:   dask cluster stop {state.name}")


@cluster.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_clusters(as_json: bool) -> None:
    """Named clusters (running, starting, dead or unreachable) and the clusters that
    discovery plugins (`dask_cluster_discovery` entry points) know of."""
    from dask_cli import output
    from dask_cli.clusters import discovery
    from dask_cli.clusters.control import survey

    discovery_timeout, disabled = discovery.settings()
    plugins = discovery.Discovery(discovery_timeout, disabled).start()
    local = asyncio.run(survey())
    found, problems = plugins.result()
    for entry in local:
        if entry.problem and entry.status == "corrupt":
            output.notice(f"Warning: {entry.problem}")
    for problem in problems:
        output.notice(f"Warning: cluster discovery {problem.source} failed: {problem.message}")
    records = [entry.to_dict() for entry in local] + [
        {"name": c.name, "kind": c.kind, "source": c.source, "status": "discovered"} for c in found
    ]
    output.print_records(
        records,
        LIST_COLUMNS,
        lambda r: (
            r["name"],
            r["kind"],
            r["source"],
            r["status"],
            r.get("scheduler_address"),
            r.get("workers"),
            r.get("threads"),
            _memory(r.get("memory")),
            _age(r.get("created")),
        ),
        noun="cluster",
        as_json=as_json,
        to_json=lambda r: r,
        empty="No named clusters; start one with `dask cluster start NAME`.",
    )


@cluster.command()
@NAME
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(name: str, as_json: bool) -> None:
    """Address, dashboard, workers, spec and log file of the cluster NAME."""
    from dask_cli import output
    from dask_cli.clusters.control import status
    from dask_cli.clusters.state import log_file
    from dask_cli.errors import DaskCliError

    found = asyncio.run(status(name))
    if found.status == "corrupt":
        raise DaskCliError(found.problem or f"Cluster {name!r} is corrupt")
    record = found.to_dict()
    record["log_file"] = str(log_file(name))
    record["spec"] = found.state.spec if found.state else None
    record["workers_detail"] = [w.__dict__ for w in found.info.workers] if found.info else []
    if as_json:
        output.print_json(record)
        return
    for key in ("name", "kind", "source", "status", "scheduler_address", "dashboard_link"):
        click.echo(f"{key.replace('_', ' ') + ':':<19}{record[key] if record[key] else '-'}")
    click.echo(f"{'age:':<19}{_age(record['created'])}")
    click.echo(f"{'log file:':<19}{record['log_file']}")
    if found.problem:
        click.echo(f"{'problem:':<19}{found.problem}")
    if record["spec"]:
        import yaml

        click.echo("spec:")
        click.echo(
            "  " + yaml.safe_dump(record["spec"], sort_keys=False).rstrip().replace("\n", "\n  ")
        )
    if found.info is not None:
        rows = [
            (w.name, w.address, w.nthreads, _memory(w.memory_limit)) for w in found.info.workers
        ]
        output.print_table(
            ("name", "address", "threads", "memory"), rows, title=f"{len(rows)} workers"
        )


@cluster.command()
@NAME
@click.argument("n", metavar="N", type=click.IntRange(min=0))
@click.option(
    "--wait/--no-wait", default=True, show_default=True, help="Wait until N workers are up."
)
@_timeout_option("the target")
def scale(name: str, n: int, wait: bool, timeout: float) -> None:
    """Scale the cluster NAME to N workers (surplus workers retire, their data moves)."""
    from dask_cli import output
    from dask_cli.clusters.control import scale as scale_cluster

    first: list[int] = []

    with output.Progress(f"Scaling {name} to {n} workers") as bar:

        def on_progress(current: int, target: int) -> None:
            if not first:
                first.append(current)
            total = abs(first[0] - target)
            bar.update(total - abs(current - target), total)

        result = asyncio.run(scale_cluster(name, n, timeout, wait, on_progress))
    click.echo(
        f"Cluster {name!r}: {len(result.workers)} workers" + ("" if wait else f", target {n}")
    )


@cluster.command()
@NAME
@click.option("--force", is_flag=True, help="Kill every process at once, no graceful close.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Graceful close at most this long, then kill [default: config "
    "cli.cluster.stop-timeout, 30s].",
)
def stop(name: str, force: bool, timeout: float | None) -> None:
    """Stop the cluster NAME (gracefully, then by force) and remove its record.

    Also cleans up after a cluster whose processes died.
    """
    from dask_cli.clusters.control import stop as stop_cluster

    if timeout is None:
        timeout = _timeout("cluster.stop-timeout", "30s")
    outcome = stop_cluster(name, timeout, force)
    message = {
        "stopped": f"Stopped cluster {name!r}.",
        "killed": f"Killed cluster {name!r}.",
        "cleaned up": f"Cluster {name!r} was not running; removed its record.",
    }[outcome.how]
    if outcome.leftovers:
        message += f" Killed {outcome.leftovers} leftover processes."
    click.echo(message)


@cluster.command()
@NAME
@click.option(
    "-n", "lines", type=click.IntRange(min=1), default=None, help="Only the last N lines."
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
def logs(name: str, lines: int | None, follow: bool) -> None:
    """The log of the cluster NAME: its holder, scheduler and workers."""
    from dask_cli.clusters.logs import print_log

    print_log(name, lines, follow, sys.stdout)
