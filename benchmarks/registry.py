"""Name resolution and ``dask worker list`` with 200 and 1,000 workers registered.

In-process workers (:mod:`benchmarks._host`) and a scheduler with our registry
plugin. At 200 the workers run their shell services; 1,000 shell services (a thread
and a loop each) do not start within 15 minutes on 2 cores, so at 1,000 the workers
have none and join a ``dask scheduler`` process (our plugins, as users run it), and
only listing is measured (nothing to resolve to). Anchors, same scheduler, same run:

- resolving a name (``resolve_worker``: the ``dask_cli_workers`` request and the
  lookup) and listing (``list_workers``) vs the scheduler's ``identity`` over
  ``rpc``: the one request distributed offers that returns every worker.
  Target (ours, not the design's): at most 1.5x.
- ``dask worker list`` as a whole process vs a fresh Python process printing
  ``Client(addr).scheduler_info()["workers"]`` names and addresses. Target: at most
  0.9x, as for ``dask worker shell -c``.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

from benchmarks import Result, Settings, median_times
from benchmarks._common import InProcessHost, median_times_async, run_async, run_process
from benchmarks.startup import dask_cli_argv
from dask_cli.testing import process_cluster

SIZES = (200, 1000)
SHELL_UP_TO = 200  # workers with shell services up to this size
QUICK_SIZES = (50,)  # starting 200 in-process workers alone takes ~a minute on 2 busy cores
IN_PROCESS_TARGET = 1.5
PROCESS_TARGET = 0.9

ANCHOR = """\
import sys
from distributed import Client

with Client(sys.argv[1], timeout=120) as client:
    workers = client.scheduler_info(n_workers=-1)["workers"]
    for address, info in workers.items():
        print(info["name"], address)
"""


async def _in_process(
    address: str, n: int, settings: Settings, shells: bool = True
) -> dict[str, float]:
    from distributed.core import rpc

    from dask_cli.debug.client.resolve import list_workers, resolve_worker
    from dask_cli.debug.client.settings import ClientSettings

    # A host process with 1,000 workers is slow to answer anything (their heartbeats
    # share its loop): wait as long as the anchor does, never the 10 s default.
    client_settings = ClientSettings(scheduler=address, timeout=120)
    scheduler = rpc(address)

    async def resolve() -> None:
        record = await resolve_worker(client_settings, "w42")
        if record.name != "w42" or not record.shell_address:
            raise RuntimeError(f"resolved w42 to {record}")

    async def listing() -> None:
        records = await list_workers(client_settings)
        if len(records) != n:
            raise RuntimeError(f"listed {len(records)} of {n} workers")

    async def identity() -> None:
        info = await scheduler.identity(n_workers=-1)
        if len(info["workers"]) != n:
            raise RuntimeError(f"identity has {len(info['workers'])} workers")

    measured = {"resolve": resolve, "list": listing, "identity": identity}
    if not shells:
        del measured["resolve"]
    try:
        return await median_times_async(measured, settings.repeats)
    finally:
        await scheduler.close_rpc()


def listing(settings: Settings) -> list[Result]:
    """Resolution and listing against 200 and 1,000 registered workers (``--quick``: 50)."""
    results: list[Result] = []
    for n in QUICK_SIZES if settings.quick else SIZES:
        results.extend(_at(n, settings))
    return results


def _at(n: int, settings: Settings) -> list[Result]:
    shells = n <= SHELL_UP_TO
    with contextlib.ExitStack() as stack:
        scheduler = None
        if not shells:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="dask-cli-bench-"))
            cluster = stack.enter_context(process_cluster(Path(directory), workers=()))
            scheduler = cluster.scheduler_address
        host = stack.enter_context(InProcessHost(n, shell=shells, timeout=900, scheduler=scheduler))
        address = scheduler or host.address
        medians = run_async(_in_process(address, n, settings, shells))
        assert isinstance(medians, dict)
        ours = [*dask_cli_argv(), "worker", "list", "--scheduler", address, "--timeout", "120"]
        anchor = [sys.executable, "-c", ANCHOR, address]
        whole = median_times(
            {"ours": run_process(ours), "anchor": run_process(anchor)},
            settings.repeats,
            warmup=0 if settings.quick else 1,
        )
    where = f"{n} workers" + ("" if shells else " without shell services")
    results = []
    if shells:
        results.append(
            Result(
                f"resolve a name among {where} vs scheduler identity",
                medians["resolve"],
                medians["identity"],
                IN_PROCESS_TARGET,
            )
        )
    results += [
        Result(
            f"list {where} (in-process) vs scheduler identity",
            medians["list"],
            medians["identity"],
            IN_PROCESS_TARGET,
        ),
        Result(
            f"dask worker list, {where} (process) vs Client.scheduler_info (process)",
            whole["ours"],
            whole["anchor"],
            PROCESS_TARGET,
        ),
    ]
    return results


BENCHMARKS = [listing]
