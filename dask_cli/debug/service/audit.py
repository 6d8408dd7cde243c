"""The audit trail: every source a shell session is sent to evaluate becomes an event
of the server (``log_event``), so the scheduler keeps who ran what."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

logger = logging.getLogger("dask_cli.debug.service")

# Events are handed to the server's loop in batches, at most this late: one callback
# onto the worker's loop per eval cost the round trip a fifth of its time.
AUDIT_DELAY = 0.05
TOPIC = "dask-cli-shell"


class AuditTrail:
    """A server's audit events, delivered to ``server.log_event`` in batches.

    Lives on the service loop: ``add`` queues an event and, for the first of a batch,
    schedules ``flush`` ``AUDIT_DELAY`` seconds later, which hands the whole batch
    to the server's loop in one callback (in order: nothing is dropped)."""

    def __init__(self, server: Any, loop: asyncio.AbstractEventLoop):
        self.server = server
        self.loop = loop
        self.pending: list[dict[str, Any]] = []

    def add(self, event: dict[str, Any]) -> None:
        if not self.pending:
            self.loop.call_later(AUDIT_DELAY, self.flush)
        self.pending.append(event)

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        server = self.server

        def deliver() -> None:
            for event in batch:
                server.log_event(TOPIC, event)

        try:
            server.loop.add_callback(deliver)
        except Exception:
            logger.debug("dask-cli shell: could not log the audit events", exc_info=True)


_audit_trails: weakref.WeakKeyDictionary[Any, AuditTrail] = weakref.WeakKeyDictionary()


def audit_trail(server: Any, loop: asyncio.AbstractEventLoop) -> AuditTrail:
    """The one batcher of ``server`` (per service loop)."""
    trail = _audit_trails.get(server)
    if trail is None or trail.loop is not loop:
        if trail is not None:
            trail.flush()
        trail = _audit_trails[server] = AuditTrail(server, loop)
    return trail
