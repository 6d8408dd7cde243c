"""A task raises, with interesting locals in the frame that failed.

``summarise_batch`` divides by the number of valid readings; the batch it gets has
none, so it raises ZeroDivisionError. The worker keeps running (a failed task does
not end a worker), and with ``--keepalive`` (or config cli.postmortem.always) it keeps
the live frames of the failure. Inspect them:

    dask worker shell ADDRESS
    >>> failed()                      # key, exception, time of each failure
    >>> pm("summarise-batch-7")       # pdb on the real frames
    (Pdb) p readings                  # the locals of the failing function
    (Pdb) p valid
    (Pdb) where / up / down / list
    (Pdb) q                           # back to the shell prompt

The worker also holds ``batch-7`` (the input) in ``data``.

Usage: python debug/task_raises.py [--scheduler ADDR] [--worker NAME|ADDR]
"""

from __future__ import annotations

import sys
from typing import Any

from _scenario import run

FAILING_KEY = "summarise-batch-7"
DATA_KEY = "batch-7"


def load_batch(batch_id: int) -> dict[str, Any]:
    return {"id": batch_id, "readings": [-1.0, -3.5, -2.25], "sensor": "thermo-12"}


def summarise_batch(batch: dict[str, Any]) -> float:
    readings = batch["readings"]
    threshold = 0.0
    valid = [r for r in readings if r >= threshold]
    return sum(valid) / len(valid)  # ZeroDivisionError: no valid reading


def trigger(client: Any, worker: str) -> dict[str, Any]:
    from distributed import wait

    batch = client.submit(load_batch, 7, key=DATA_KEY, workers=[worker])
    summary = client.submit(summarise_batch, batch, key=FAILING_KEY, workers=[worker])
    wait(summary)
    # Keep the input on the worker after this client leaves (the published dataset
    # holds a reference, so `data["batch-7"]` is still there to inspect).
    client.publish_dataset(batch, name=DATA_KEY, override=True)
    return {"worker": worker, "failed task": FAILING_KEY, "error": repr(summary.exception())}


def inspect(worker: str, found: dict[str, Any]) -> list[str]:
    return [
        f"dask worker shell {worker} -c 'print(failed())'",
        f"dask worker shell {worker}   then: pm({FAILING_KEY!r}), p readings, q",
    ]


if __name__ == "__main__":
    sys.exit(run(__doc__, trigger, inspect=inspect))
