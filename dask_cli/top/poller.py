"""The client side of ``dask top``'s data: one snapshot request per refresh.

Apart from the Textual app so that ``dask top --once``, the benchmarks and tests
use the same code. One connection to the scheduler's comm port is kept open
between refreshes (no handshake per second); when it breaks, the next ``fetch``
connects again, reading the scheduler file again, so a scheduler restarted with
``--scheduler-file`` is found at its new address.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import Any

from dask_cli.errors import DaskCliError
from dask_cli.top import protocol
from dask_cli.top.protocol import LogLine, Snapshot

LOG_TAIL = 200  # log lines the poller keeps across refreshes

NO_FEATURE_HINT = (
    "Start the scheduler with `dask scheduler`, or add `--preload dask_cli.debug` to "
    "yours (dask-cli must be installed where the scheduler runs)."
)


class NoSnapshotFeature(DaskCliError):
    """The scheduler answered, but does not serve dask top's snapshot."""


class SnapshotPoller:
    """Fetches snapshots from the scheduler ``settings`` name (a ``ClientSettings``).

    ``logs`` accumulates the scheduler's log tail: each request asks only for lines
    newer than the last one received.
    """

    def __init__(self, settings: Any, limit: int = protocol.DEFAULT_WORKERS):
        self.settings = settings
        self.limit = limit
        self.address: str | None = None
        self.logs: collections.deque[LogLine] = collections.deque(maxlen=LOG_TAIL)
        self._comm: Any = None

    async def fetch(self, sort: str | None = None, reverse: bool = False) -> Snapshot:
        """One snapshot. Raises ``ConnectionFailed`` (scheduler unreachable, frozen,
        TLS refused), ``NoSnapshotFeature``, or ``DaskCliError`` (no address)."""
        from distributed.core import send_recv

        timeout = self.settings.connect_timeout()
        if self._comm is None or self._comm.closed():
            await self._connect(timeout)
        request = {
            "op": protocol.SNAPSHOT_HANDLER,
            "limit": self.limit,
            "sort": sort,
            "reverse": reverse,
            "log_since": self.logs[-1].time if self.logs else 0.0,
        }
        try:
            answer = await asyncio.wait_for(
                send_recv(self._comm, serializers=("msgpack",), **request), timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            await self.close()
            from dask_cli.debug.client.connect import classify

            raise classify(self.address or "", exc, timeout, "scheduler") from None
        except Exception as exc:  # the scheduler answered with an error
            await self.close()
            raise NoSnapshotFeature(
                f"The scheduler at {self.address} does not serve dask top: {exc}",
                hint=NO_FEATURE_HINT,
            ) from None
        try:
            found = protocol.decode(answer)
        except protocol.SnapshotError:
            raise NoSnapshotFeature(
                f"The scheduler at {self.address} does not serve dask top", hint=NO_FEATURE_HINT
            ) from None
        self.logs.extend(found.logs)
        found.logs = list(self.logs)
        return found

    async def _connect(self, timeout: float) -> None:
        from dask_cli.debug.client.connection import connect_comm

        address = self.settings.scheduler_address()
        if address != self.address:
            self.logs.clear()
        self.address = address
        self._comm = await connect_comm(address, self.settings.security(), timeout, "scheduler")

    async def close(self) -> None:
        comm, self._comm = self._comm, None
        if comm is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(comm.close(), 2)
        if not comm.closed():
            comm.abort()


async def fetch_once(settings: Any, limit: int = protocol.DEFAULT_WORKERS) -> Snapshot:
    """One snapshot, connection closed after (``dask top --once``)."""
    poller = SnapshotPoller(settings, limit)
    try:
        return await poller.fetch()
    finally:
        await poller.close()
