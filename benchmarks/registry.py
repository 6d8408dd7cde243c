"""Name resolution and ``dask worker list`` with 200 and 1,000 workers registered.

In-process workers with their shell services (:mod:`benchmarks._host`), and a
scheduler with our registry plugin. Anchors, same scheduler, same run:

- resolving a name (``resolve_worker``: the ``dask_cli_workers`` request and the
  lookup) and listing (``list_workers``) vs the scheduler's ``identity`` over
  ``rpc``: the one request distributed offers that returns every worker.
  Target (ours, not the design's): at most 1.5x.
- ``dask worker list`` as a whole process vs a fresh Python process printing
  ``Client(addr).scheduler_info()["workers"]`` names and addresses. Target: at most
  0.9x, as for ``dask worker shell -c``.
"""

from __future__ import annotations

import sys

from benchmarks import Result, Settings, median_times
from benchmarks._common import InProcessHost, median_times_async, run_async, run_process
from benchmarks.startup import dask_cli_argv

SIZES = (200, 1000)
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


async def _in_process(address: str, n: int, settings: Settings) -> dict[str, float]:
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

    try:
        return await median_times_async(
            {"resolve": resolve, "list": listing, "identity": identity}, settings.repeats
        )
    finally:
        await scheduler.close_rpc()


def listing(settings: Settings) -> list[Result]:
    """Resolution and listing against 200 and 1,000 registered workers (``--quick``: 50)."""
    results: list[Result] = []
    for n in QUICK_SIZES if settings.quick else SIZES:
        results.extend(_at(n, settings))
    return results


def _at(n: int, settings: Settings) -> list[Result]:
    with InProcessHost(n, timeout=900) as host:
        medians = run_async(_in_process(host.address, n, settings))
        assert isinstance(medians, dict)
        ours = [*dask_cli_argv(), "worker", "list", "--scheduler", host.address, "--timeout", "120"]
        anchor = [sys.executable, "-c", ANCHOR, host.address]
        whole = median_times(
            {"ours": run_process(ours), "anchor": run_process(anchor)},
            settings.repeats,
            warmup=0 if settings.quick else 1,
        )
    return [
        Result(
            f"resolve a name among {n} workers vs scheduler identity",
            medians["resolve"],
            medians["identity"],
            IN_PROCESS_TARGET,
        ),
        Result(
            f"list {n} workers (in-process) vs scheduler identity",
            medians["list"],
            medians["identity"],
            IN_PROCESS_TARGET,
        ),
        Result(
            f"dask worker list, {n} workers (process) vs Client.scheduler_info (process)",
            whole["ours"],
            whole["anchor"],
            PROCESS_TARGET,
        ),
    ]


BENCHMARKS = [listing]
