"""A task's memory grows until the nanny acts.

``grow`` appends 20 MB blocks to a list until the worker process passes the
nanny's terminate threshold (95% of --memory-limit, distributed.worker.memory.
terminate); the nanny then sends SIGTERM. keepalive cannot keep a process that is
killed, but the nanny keeps what it can: the exit signal, the worker's last log
lines and the Python stacks faulthandler wrote at SIGTERM (showing ``grow``). With
--keepalive the nanny does not restart the worker; it logs one line, and

    dask worker shell ADDRESS        # ADDRESS from that line: a session on the nanny
    >>> crash                        # exit signal, last log lines, stacks

Without a memory limit the task stops at --max-mb (default 1024) and returns.

Usage: python debug/memory_growth.py [--scheduler ADDR] [--worker NAME|ADDR] [--max-mb N]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _scenario import run

MEMORY_LIMIT = "400MB"
NANNY_LINE = r"Worker .* process .*: kept the nanny for post-mortem.*"


def grow(max_mb: int) -> int:
    import time

    blocks = []
    while len(blocks) * 20 < max_mb:
        blocks.append(bytearray(b"\x01") * (20 * 2**20))  # filled: really resident
        time.sleep(0.02)
    return len(blocks) * 20


def main() -> int:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--max-mb", type=int, default=1024)
    ours, rest = extra.parse_known_args()

    def trigger(client: Any, worker: str) -> dict[str, Any]:
        future = client.submit(grow, ours.max_mb, key="grow", workers=[worker])
        client.publish_dataset(future, name="memory-growth-scenario", override=True)
        name = client.scheduler_info(n_workers=-1)["workers"][worker]["name"]
        return {
            "worker": f"{name} ({worker})",
            "growing task": "grow (20 MB per step)",
            "scheduler address": client.scheduler.address,
        }

    def inspect(worker: str, found: dict[str, Any]) -> list[str]:
        name = found["worker"].split(" (")[0]
        scheduler = found["scheduler address"]
        return [
            f"dask worker shell {name} --scheduler {scheduler} -c 'print(crash)'",
            "(or the address in the nanny's log line, once it has acted)",
        ]

    return run(
        __doc__,
        trigger,
        worker_args=("--memory-limit", MEMORY_LIMIT),
        inspect=inspect,
        argv=rest,
        log_line=NANNY_LINE,
    )


if __name__ == "__main__":
    sys.exit(main())
