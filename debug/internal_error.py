"""A worker hits an internal error: distributed's ``fail_hard`` closes it.

An event that is not a valid state-machine event reaches ``Worker.handle_stimulus``
(as a bug in distributed or in an extension would), which raises inside a method
decorated with ``fail_hard``. distributed then closes the worker (reason
``worker-handle_stimulus-fail-hard``) and, if closing fails, ``os._exit(1)``. With
``--keepalive`` the worker stays up instead, its data and task states intact:

    dask worker shell ADDRESS -c 'print(tasks())'
    dask worker logs ADDRESS             # the traceback of the internal error

Usage: python debug/internal_error.py [--scheduler ADDR] [--worker NAME|ADDR]
"""

from __future__ import annotations

import sys
from typing import Any

from _scenario import run

KEPT_ALIVE_LINE = r"Worker .* is kept alive for post-mortem.*"

DATA_KEY = "state-before-error"


def corrupt_state_machine(dask_worker: Any) -> None:
    from distributed.worker_state_machine import StateMachineEvent

    class NotAnEventTheWorkerKnows(StateMachineEvent):
        __slots__ = ()

    dask_worker.handle_stimulus(NotAnEventTheWorkerKnows(stimulus_id="dask-cli-scenario"))


def trigger(client: Any, worker: str) -> dict[str, Any]:
    key = f"{DATA_KEY}-{worker}"  # one per worker: the scenario may run on several
    held = client.submit(lambda: list(range(10)), key=key, workers=[worker])
    held.result()
    client.publish_dataset(held, name=key, override=True)
    try:
        client.run(corrupt_state_machine, workers=[worker])
    except Exception as exc:  # the internal error itself, reported back by client.run
        error = repr(exc)
    else:
        error = "(no error raised?)"
    return {"worker": worker, "held key": key, "internal error": error}


def inspect(worker: str, found: dict[str, Any]) -> list[str]:
    return [
        f"dask worker shell {worker}",
        f"dask worker logs {worker}",
        f"dask worker shell {worker} -c 'print(tasks())'",
    ]


if __name__ == "__main__":
    sys.exit(run(__doc__, trigger, inspect=inspect, log_line=KEPT_ALIVE_LINE))
