"""``dask worker exec --all -c CODE`` on 8, 32 and 100 workers (``--quick``: 4 and 12),
against ``client.run`` on all.

Workers are in-process workers of one host process (:mod:`benchmarks._host`: a
scheduler and N workers with the ``dask_cli.debug`` preload, as our ``dask
scheduler``/``dask worker`` load it): 100 worker processes do not fit a 2-core
machine. Ours and the anchor run against the same host, interleaved. Rows:

- in the benchmark process: ``api.exec_on_workers`` (list the workers, then one
  request that the scheduler fans out over its own connections) vs a fresh
  asynchronous ``Client`` doing ``run(f)`` and closing: the same one-shot work
  without process start-up. Target: at most 1.0x.
- whole process: ``dask worker exec --all -c pass`` vs a fresh Python process doing
  ``Client(addr).run(f)`` (what users do today). Target: at most 1.0x.
- growth: t(100) / t(8) of both in-process figures (ours grows no faster than
  ``client.run``). Target: at most 1.0x.
"""

from __future__ import annotations

import sys

from benchmarks import Result, Settings, median_times
from benchmarks._common import InProcessHost, median_times_async, run_async, run_process
from benchmarks.startup import dask_cli_argv

TARGET = 1.0
SIZES = (8, 32, 100)
QUICK_SIZES = (4, 12)
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

    from dask_cli.debug.client.api import exec_on_workers
    from dask_cli.debug.client.settings import ClientSettings

    client_settings = ClientSettings(scheduler=address, timeout=60)

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


def exec_all(settings: Settings) -> list[Result]:
    """Medians at each size, in the benchmark process and as whole processes, plus the
    growth from the smallest to the largest size."""
    results: list[Result] = []
    inproc: dict[int, dict[str, float]] = {}
    sizes = QUICK_SIZES if settings.quick else SIZES
    for n in sizes:
        with InProcessHost(n, timeout=600) as host:
            medians = run_async(_in_process(host.address, n, settings))
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
            ours = [*dask_cli_argv(), "worker", "exec", "--all", "-c", CODE]
            ours += ["--scheduler", host.address, "--timeout", "60"]
            anchor = [sys.executable, "-c", ANCHOR, host.address, str(n)]
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
    small, big = sizes[0], sizes[-1]
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
