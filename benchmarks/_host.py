"""``python -m benchmarks._host --workers N [--no-shell] [--scheduler ADDRESS]``: a
scheduler and N in-process workers (one thread each, names ``w1``..``wN``) on 127.0.0.1
in this one process; with ``--scheduler``, only the workers, joining that scheduler
(to measure a scheduler process on its own).

Tens or hundreds of worker processes would not fit a 2-core machine; in-process
workers register, heartbeat and serve shell sessions like real ones. With the
shell (default) the scheduler and every worker load the ``dask_cli.debug`` preload,
as our ``dask scheduler``/``dask worker`` do. Prints ``scheduler ADDRESS`` once every
worker has registered, and stops when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable


async def serve(workers: int, shell: bool, address: str | None = None) -> None:
    from distributed import Scheduler

    import dask_cli.config  # noqa: F401 - registers the ``cli.*`` config defaults

    preload = ["dask_cli.debug"] if shell else []
    if address is not None:
        await run_workers(address, workers, preload)
        return
    async with Scheduler(
        host="127.0.0.1", port=0, dashboard_address=None, preload=preload
    ) as scheduler:

        async def published() -> None:
            if not shell:
                return
            # Each worker publishes its shell address once it is up: wait for all.
            from dask_cli.debug import protocol

            for _ in range(600):
                found = scheduler.get_metadata(keys=[protocol.METADATA_KEY, "workers"], default={})
                if len(found) >= workers:
                    break
                await asyncio.sleep(0.05)

        await run_workers(scheduler.address, workers, preload, published)


async def run_workers(
    address: str,
    workers: int,
    preload: list[str],
    ready: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start the workers, await ``ready``, print ``scheduler ADDRESS``, stop on stdin EOF."""
    from distributed import Worker

    nodes = [
        Worker(
            address,
            host="127.0.0.1",
            nthreads=1,
            name=f"w{i + 1}",
            preload=preload,
            memory_limit=0,
        )
        for i in range(workers)
    ]
    await asyncio.gather(*nodes)
    if ready is not None:
        await ready()
    print("scheduler", address, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for node in nodes:
        with contextlib.suppress(Exception):
            await node.close(reason="benchmark-done")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._host", description=__doc__)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--no-shell", dest="shell", action="store_false")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="join this scheduler")
    args = parser.parse_args()
    asyncio.run(serve(args.workers, args.shell, args.scheduler))


if __name__ == "__main__":
    main()
