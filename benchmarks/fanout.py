"""``dask worker exec --all -c CODE`` on 8 and 32 workers (``--quick``: 4 and 12),
against ``client.run`` on all.

Workers are real processes, as users start them: ``dask worker --nworkers 8
--nthreads 1`` (then ``--nworkers 24`` more for 32), each with its shell service.
(In-process workers sharing one GIL were tried first: their 32 shell threads
contend for that GIL, which penalises the shell but not ``client.run``, whose
requests all land on one event loop; real workers do not share a GIL.) Rows:

- whole process: ``dask worker exec --all -c pass`` vs a fresh Python process doing
  ``Client(addr).run(f)`` (what users do today). Target: at most 1.0x.
- in the benchmark process: :func:`exec_on_workers` (list, connect to every worker,
  run, close) vs a fresh asynchronous ``Client`` doing ``run(f)`` and closing: the
  same one-shot work without process start-up. Target: at most 1.0x.
- growth: t(32) / t(8) of both in-process figures. Target: at most 1.0x (ours
  grows no faster than ``client.run``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Result, Settings, median_times
from benchmarks._common import median_times_async, run_async, run_process
from benchmarks.startup import dask_cli_argv
from dask_cli.testing import LOCALHOST, DaskProcess, ProcessCluster, dask_command

TARGET = 1.0
SIZES = (8, 32)
QUICK_SIZES = (4, 12)  # starting 32 worker processes takes ~30 s on 2 busy cores
CODE = "pass"

ANCHOR = """\
import sys
from distributed import Client

def f():
    pass

with Client(sys.argv[1]) as client:
    assert len(client.run(f)) == int(sys.argv[2])
"""


async def _in_process(address: str, n: int, settings: Settings) -> dict[str, float]:
    from distributed import Client

    from dask_cli.debug.client.runner import exec_on_workers
    from dask_cli.debug.client.settings import ClientSettings

    client_settings = ClientSettings(scheduler=address)

    def f() -> None:  # nested: pickled by value, the workers cannot import benchmarks
        pass

    async def ours() -> None:
        outcomes = await exec_on_workers(client_settings, None, CODE)
        failed = [o for o in outcomes if o.failed]
        if len(outcomes) != n or failed:
            raise RuntimeError(f"exec --all reached {len(outcomes)} workers, {len(failed)} failed")

    async def anchor() -> None:
        async with Client(address, asynchronous=True) as client:
            assert len(await client.run(f)) == n

    return await median_times_async({"ours": ours, "anchor": anchor}, settings.repeats)


def _wait_for_shells(address: str, n: int, timeout: float = 180) -> None:
    """Until the scheduler lists ``n`` workers, every one with its shell address."""
    import asyncio

    from dask_cli.debug.client.resolve import list_workers
    from dask_cli.debug.client.settings import ClientSettings

    settings = ClientSettings(scheduler=address)
    deadline = time.monotonic() + timeout
    while True:
        records = asyncio.run(list_workers(settings))
        if sum(1 for r in records if r.shell_address) >= n:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(records)} of {n} workers came up")
        time.sleep(0.5)


def exec_all(settings: Settings) -> list[Result]:
    """Medians for 8 and 32 worker processes, in the benchmark process and as whole
    processes, plus the growth from 8 to 32."""
    results: list[Result] = []
    inproc: dict[int, dict[str, float]] = {}
    sizes = QUICK_SIZES if settings.quick else SIZES
    with tempfile.TemporaryDirectory(prefix="dask-cli-bench-") as tmp:
        cluster = ProcessCluster(Path(tmp))
        try:
            address = cluster.start_scheduler()
            running = 0
            for n in sizes:
                # ``dask worker --nworkers K --nthreads 1``: K nanny-managed processes.
                cluster.workers[f"batch{n}"] = DaskProcess(
                    dask_command("worker", address, "--host", LOCALHOST, "--nthreads", "1")
                    + ["--nworkers", str(n - running), "--no-dashboard", "--memory-limit", "0"],
                    cwd=tmp,
                )
                running = n
                _wait_for_shells(address, n)
                medians = run_async(_in_process(address, n, settings))
                assert isinstance(medians, dict)
                inproc[n] = medians
                results.append(
                    Result(
                        f"exec --all on {n} workers (in benchmark process) vs Client+run",
                        medians["ours"],
                        medians["anchor"],
                        TARGET,
                    )
                )
                if settings.quick and n != sizes[-1]:
                    continue  # whole processes cost seconds each: quick runs only the big one
                ours = [*dask_cli_argv(), "worker", "exec", "--all", "-c", CODE]
                ours += ["--scheduler", address]
                anchor = [sys.executable, "-c", ANCHOR, address, str(n)]
                whole = median_times(
                    {"ours": run_process(ours), "anchor": run_process(anchor)},
                    settings.repeats,
                    warmup=0 if settings.quick else 1,
                )
                results.append(
                    Result(
                        f"dask worker exec --all on {n} workers (process) vs Client.run (process)",
                        whole["ours"],
                        whole["anchor"],
                        TARGET,
                    )
                )
        finally:
            cluster.close()
    small, big = sizes
    results.append(
        Result(
            f"exec --all growth {small}->{big} workers: t({big})/t({small}), in-process",
            inproc[big]["ours"] / inproc[small]["ours"],
            inproc[big]["anchor"] / inproc[small]["anchor"],
            TARGET,
            unit="x",
        )
    )
    return results


BENCHMARKS = [exec_all]
