"""``dask worker shell NAME -c 'print(1)'`` as a whole process, against a fresh Python
process doing what users do without dask-cli: ``Client(addr).run(f, workers=[...])``.

Both start an interpreter, import what they need, reach the scheduler, run one
function on one worker and print its output. Target: at most 0.9x of the anchor.

A third process, ``python -c 'import distributed'``, is the floor of any client
that speaks distributed's comm protocol: importing any ``distributed.*`` module
runs ``distributed/__init__``, which imports the whole client. Its row shows how
much of the anchor that floor already is (the 0.9x target is below it when the
floor's ratio is near or above 0.9).
"""

from __future__ import annotations

import sys

from benchmarks import Result, Settings, median_times
from benchmarks._common import run_process, shared_cluster
from benchmarks.startup import dask_cli_argv

TARGET = 0.9

ANCHOR = """\
import sys
from distributed import Client

def f():
    print(1)
    return 1

with Client(sys.argv[1]) as client:
    print(client.run(f, workers=[sys.argv[2]])[sys.argv[2]])
"""


def shell_c(settings: Settings) -> list[Result]:
    """Median wall time of ``dask worker shell w1 -c 'print(1)'`` vs ``Client.run``."""
    cluster = shared_cluster()
    address = cluster.scheduler_address
    worker = _worker_address(address, "w1")
    ours = [*dask_cli_argv(), "worker", "shell", "w1", "-c", "print(1)", "--scheduler", address]
    anchor = [sys.executable, "-c", ANCHOR, address, worker]
    floor = [sys.executable, "-c", "import distributed"]
    medians = median_times(
        {"ours": run_process(ours), "anchor": run_process(anchor), "floor": run_process(floor)},
        settings.repeats,
        warmup=0 if settings.quick else 1,
    )
    return [
        Result(
            "dask worker shell NAME -c (process) vs Client.run (process)",
            medians["ours"],
            medians["anchor"],
            TARGET,
        ),
        Result(
            "floor: python -c 'import distributed' (process) vs Client.run (process)",
            medians["floor"],
            medians["anchor"],
            TARGET,
        ),
    ]


def _worker_address(scheduler: str, name: str) -> str:
    """The anchor gets the worker's address for free (no name resolution on its side)."""
    import asyncio

    from dask_cli.debug.client.resolve import resolve_worker
    from dask_cli.debug.client.settings import ClientSettings

    return asyncio.run(resolve_worker(ClientSettings(scheduler=scheduler), name)).address


BENCHMARKS = [shell_c]
