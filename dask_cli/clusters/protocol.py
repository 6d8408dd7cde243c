"""The holder's two wires, defined once for both ends.

1. Control requests, over distributed's comm layer (``distributed.core.rpc`` to the
   holder's ``Server`` on 127.0.0.1). Every request carries the cluster's ``token``,
   which only the user can read (it sits in the 0700 state folder); a request
   without the right token is refused. Messages are plain msgpack data.

   ============  ======================  =========================================
   op            arguments               reply
   ============  ======================  =========================================
   INFO          token                   :class:`ClusterInfo` as a dict
   SCALE         token, n                ``{"target": n}`` (scaling goes on after)
   STOP          token, grace            ``{"stopping": True}`` (the holder exits
                                         after a graceful close, at most ``grace`` s)
   ============  ======================  =========================================

2. Start-up events, one JSON object per line on a pipe the launching command hands
   the holder: STARTED (the scheduler is up: its address), READY (every requested
   worker has registered), FAILED (with ``error``). The launcher returns on READY
   (``--wait``) or STARTED (``--no-wait``), and reports FAILED or a closed pipe as
   an error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

INFO = "cluster_info"
SCALE = "cluster_scale"
STOP = "cluster_stop"

STARTED = "started"
READY = "ready"
FAILED = "failed"


class Unauthorized(Exception):
    """The request's token is not the cluster's."""


@dataclass
class WorkerSummary:
    name: str
    address: str
    nthreads: int = 0
    memory_limit: int = 0


@dataclass
class ClusterInfo:
    """What a holder (or, for clusters without one, the scheduler) says about a cluster now."""

    scheduler_address: str | None
    dashboard_link: str | None = None
    status: str = "running"
    target: int | None = None  # workers asked for (scale), when the manager has a target
    workers: list[WorkerSummary] = field(default_factory=list)

    @property
    def nthreads(self) -> int:
        return sum(w.nthreads for w in self.workers)

    @property
    def memory(self) -> int:
        return sum(w.memory_limit for w in self.workers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterInfo:
        data = dict(data)
        workers = [WorkerSummary(**w) for w in data.pop("workers", [])]
        known = set(cls.__dataclass_fields__)
        return cls(workers=workers, **{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_identity(cls, identity: dict[str, Any], target: int | None = None) -> ClusterInfo:
        """From the reply of the scheduler's own ``identity`` handler."""
        workers = [
            WorkerSummary(
                name=str(info.get("name", address)),
                address=address,
                nthreads=int(info.get("nthreads") or 0),
                memory_limit=int(info.get("memory_limit") or 0),
            )
            for address, info in (identity.get("workers") or {}).items()
        ]
        workers.sort(key=lambda w: (len(w.name), w.name))
        return cls(scheduler_address=identity.get("address"), target=target, workers=workers)


def event(kind: str, **fields: Any) -> bytes:
    """One start-up event line."""
    return (json.dumps({"event": kind, **fields}) + "\n").encode()


def parse_event(line: bytes) -> dict[str, Any]:
    """An event line back as a dict; a line that is not one is a FAILED event."""
    try:
        data = json.loads(line)
        if isinstance(data, dict) and "event" in data:
            return data
    except ValueError:
        pass
    return {"event": FAILED, "error": f"unexpected output from the holder: {line[:200]!r}"}
