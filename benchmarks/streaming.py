"""Output streaming: a remote statement that prints 64 MiB of text, line by line, against
sending the same text over a raw comm from the same worker.

The anchor is distributed's own ``run`` handler called over ``rpc`` straight to the
worker (no scheduler): the worker builds the text and sends it as one message, the
fastest way distributed has to move it. Throughput target: at least 0.5x.

Memory: while the shell streams, the worker's and this client's resident memory is
sampled; the peak growth must stay a small part of what was printed (output is
streamed in bounded chunks, never buffered whole). Target: at most a quarter of it.
``--quick`` prints 16 MiB instead.
"""

from __future__ import annotations

import os
import statistics
import time

from benchmarks import Result, Settings
from benchmarks._common import PeakRSS, run_async, shared_cluster, worker_pid

THROUGHPUT_TARGET = 0.5
MEMORY_TARGET = 0.25
LINE = 1024  # bytes per printed line, newline included
MiB = 2**20


def _source(lines: int) -> str:
    return f"line = 'x' * {LINE - 1}\nfor _ in range({lines}):\n    print(line)\n"


async def _measure(scheduler: str, pid: int, size: int, settings: Settings) -> dict[str, list]:
    import cloudpickle
    from distributed.core import rpc

    from dask_cli.debug.client.connection import ShellConnection
    from dask_cli.debug.client.resolve import resolve_worker
    from dask_cli.debug.client.settings import ClientSettings

    lines = size // LINE
    record = await resolve_worker(ClientSettings(scheduler=scheduler), "w1")
    assert record.shell_address
    conn = await ShellConnection.open(record.shell_address)
    raw = rpc(record.address)

    def text() -> str:  # runs on the worker; nested so it is pickled by value
        return ("x" * (LINE - 1) + "\n") * lines

    function = cloudpickle.dumps(text)
    samples: dict[str, list] = {"ours": [], "anchor": [], "worker": [], "client": []}
    try:
        for _ in range(settings.repeats):
            received = 0

            def count(stream: str, chunk: str) -> None:
                nonlocal received
                received += len(chunk)

            with PeakRSS(pid) as worker_rss, PeakRSS(os.getpid()) as client_rss:
                start = time.perf_counter()
                result = await conn.eval(_source(lines), mode="exec", on_output=count)
                samples["ours"].append(time.perf_counter() - start)
            if result.status != "ok" or received != size:
                raise RuntimeError(f"streamed {received} of {size} bytes ({result.status})")
            samples["worker"].append(worker_rss.growth)
            samples["client"].append(client_rss.growth)

            start = time.perf_counter()
            reply = await raw.run(function=function)
            samples["anchor"].append(time.perf_counter() - start)
            if len(reply["result"]) != size:
                raise RuntimeError("raw transfer lost bytes")
            del reply
    finally:
        await raw.close_rpc()
        await conn.close()
    return samples


def print_64mb(settings: Settings) -> list[Result]:
    """Throughput of streamed output vs raw comm, and peak RSS growth while streaming."""
    cluster = shared_cluster()
    size = (16 if settings.quick else 64) * MiB
    samples = run_async(
        _measure(cluster.scheduler_address, worker_pid(cluster, "w1"), size, settings)
    )
    assert isinstance(samples, dict)
    mb = size / MiB
    ours = mb / statistics.median(samples["ours"])
    anchor = mb / statistics.median(samples["anchor"])
    return [
        Result(
            f"print {mb:g} MiB streamed vs raw comm transfer",
            ours,
            anchor,
            THROUGHPUT_TARGET,
            better="higher",
            unit="MB/s",
        ),
        Result(
            f"worker peak RSS growth while streaming vs {mb:g} MiB printed",
            max(samples["worker"]) / MiB,
            mb,
            MEMORY_TARGET,
            unit="MB",
        ),
        Result(
            f"client peak RSS growth while streaming vs {mb:g} MiB printed",
            max(samples["client"]) / MiB,
            mb,
            MEMORY_TARGET,
            unit="MB",
        ),
    ]


BENCHMARKS = [print_64mb]
