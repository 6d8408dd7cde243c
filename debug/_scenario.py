"""Shared plumbing of the failure scenarios in this folder (not a package: run the
scripts as ``python debug/NAME.py``; Python puts this folder on ``sys.path``).

Each scenario has a ``trigger(client, worker_address)`` that makes one worker fail in
one specific way. With ``--scheduler ADDR`` it runs against that cluster and exits;
without, it starts a local cluster of real ``dask scheduler`` / ``dask worker
--keepalive`` processes on 127.0.0.1, triggers the failure, prints the commands that
inspect it, and keeps the cluster up until Ctrl-C (``--no-wait``: stop at once).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dask_cli.testing import ProcessCluster, process_cluster

WORKER_NAME = "scenario-worker"


def parse_args(doc: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], epilog=doc, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scheduler", help="run against this scheduler instead of a local cluster")
    parser.add_argument("--worker", help="address or name of the worker to break (default: any)")
    parser.add_argument(
        "--no-nanny", action="store_true", help="local cluster: start the worker with --no-nanny"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="local cluster: stop it right after the failure"
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def local_cluster(worker_args: Sequence[str] = (), nanny: bool = True) -> Iterator[ProcessCluster]:
    """A scheduler and one kept-alive worker, real processes on 127.0.0.1."""
    args = ["--keepalive", *worker_args, *([] if nanny else ["--no-nanny"])]
    with tempfile.TemporaryDirectory(prefix="dask-cli-scenario-") as directory:
        with process_cluster(directory, workers=(WORKER_NAME,), worker_args=args) as cluster:
            yield cluster


def pick_worker(client: Any, wanted: str | None) -> str:
    """The address of ``wanted`` (a name or an address), else of the first worker."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    if not info:
        raise SystemExit("The cluster has no workers")
    for address, worker in info.items():
        if wanted in (None, address, str(worker.get("name"))):
            return address
    raise SystemExit(f"No worker {wanted!r}; workers: {', '.join(info)}")


def run(
    doc: str,
    trigger: Callable[[Any, str], dict[str, Any]],
    worker_args: Sequence[str] = (),
    inspect: Callable[[str, dict[str, Any]], list[str]] | None = None,
    argv: Sequence[str] | None = None,
    log_line: str | None = None,
) -> int:
    """Parse the command line, run ``trigger`` on the chosen cluster, print what to do next.

    ``log_line``: a regular expression for the line the failure makes the worker (or
    its nanny) log; on a local cluster the scenario waits for it and shows it.
    """
    from distributed import Client

    args = parse_args(doc, argv)
    if args.scheduler:
        with Client(args.scheduler, timeout="10s") as client:
            worker = pick_worker(client, args.worker)
            found = trigger(client, worker)
        _report(worker, found, inspect, args.scheduler)
        return 0
    with local_cluster(worker_args, nanny=not args.no_nanny) as cluster:
        with Client(cluster.scheduler_address, timeout="10s") as client:
            worker = pick_worker(client, None)
            found = trigger(client, worker)
        if log_line:
            process = cluster.workers[WORKER_NAME]
            line = process.wait_for(log_line, 120).group(0)
            found["the worker logged"] = line.split(" - WARNING - ")[-1]
        _report(worker, found, inspect, cluster.scheduler_address)
        if not args.no_wait:
            print("\nThe cluster stays up until Ctrl-C.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    return 0


def _report(
    worker: str,
    found: dict[str, Any],
    inspect: Callable[[str, dict[str, Any]], list[str]] | None,
    scheduler: str,
) -> None:
    for key, value in found.items():
        print(f"{key}: {value}")
    print("\nInspect it with:")
    for command in inspect(worker, found) if inspect else [f"dask worker shell {worker}"]:
        print(f"  {command}")
    if found.get("scheduler") != "exits now":
        print(f"  dask worker list --scheduler {shlex.quote(scheduler)}")
    sys.stdout.flush()


def wait_until(predicate: Callable[[], bool], timeout: float = 30, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


__all__ = ["local_cluster", "parse_args", "pick_worker", "run", "wait_until"]
