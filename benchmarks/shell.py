"""Round trip of ``1+1`` in an open shell session, against the worker's own comm.

Anchors, measured in the same run against the same ``dask worker`` process:

- ``identity`` over distributed's ``rpc`` (a kept-open comm to the worker): the raw
  round trip any request to a worker pays. Target: at most 1.5x.
- ``client.run(f, workers=[w])``: what users do today to run code on one worker
  (scheduler in the path). Target: at most 0.5x.

One sample is a batch of round trips on an already open connection (so connecting
is not measured: the whole-process cost is in :mod:`benchmarks.process`).
"""

from __future__ import annotations

from benchmarks import Result, Settings
from benchmarks._common import median_times_async, run_async, shared_cluster

RAW_TARGET = 1.5
CLIENT_RUN_TARGET = 0.5


async def _measure(scheduler: str, settings: Settings) -> dict[str, float]:
    from distributed import Client
    from distributed.core import rpc

    from dask_cli.debug.client.connection import ShellConnection
    from dask_cli.debug.client.resolve import resolve_worker
    from dask_cli.debug.client.settings import ClientSettings

    record = await resolve_worker(ClientSettings(scheduler=scheduler), "w1")
    assert record.shell_address
    conn = await ShellConnection.open(record.shell_address)
    raw = rpc(record.address)
    client = await Client(scheduler, asynchronous=True)

    def noop() -> int:  # nested: pickled by value, the worker cannot import benchmarks
        return 2

    try:

        async def shell() -> None:
            result = await conn.eval("1+1")
            if result.value != "2":
                raise RuntimeError(f"shell answered {result.value!r}: {result.traceback}")

        async def identity() -> None:
            await raw.identity()

        async def client_run() -> None:
            await client.run(noop, workers=[record.address])

        return await median_times_async(
            {"shell": shell, "identity": identity, "client.run": client_run},
            settings.repeats,
            inner=20 if settings.quick else 100,
        )
    finally:
        await client.close()
        await raw.close_rpc()
        await conn.close()


def round_trip(settings: Settings) -> list[Result]:
    """Median time of one ``1+1`` round trip, in session, vs identity and client.run."""
    cluster = shared_cluster()
    medians = run_async(_measure(cluster.scheduler_address, settings))
    assert isinstance(medians, dict)
    return [
        Result(
            "shell 1+1 round trip vs raw comm identity",
            medians["shell"],
            medians["identity"],
            RAW_TARGET,
        ),
        Result(
            "shell 1+1 round trip vs client.run",
            medians["shell"],
            medians["client.run"],
            CLIENT_RUN_TARGET,
        ),
    ]


BENCHMARKS = [round_trip]
