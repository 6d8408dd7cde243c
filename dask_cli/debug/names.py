"""Worker records and name resolution: one implementation for the scheduler plugin
(which answers ``WORKERS_HANDLER``) and the client (which computes the same records
itself from ``identity()`` and the metadata when the scheduler has no plugin).

Pure functions over plain dicts (the record is ``protocol.WorkerRecord``): no
distributed import, easy to test.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dask_cli.debug.protocol import KEPT_ALIVE, ProtocolError, WorkerRecord
from dask_cli.errors import WorkerNotFound


def build_records(
    workers: Mapping[str, Mapping[str, Any]],
    metadata: Mapping[str, Any] | None,
    remembered: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[WorkerRecord]:
    """Records for the workers the scheduler knows, plus ``remembered`` kept-alive ones.

    ``workers``: address → {name, status, nthreads, memory_limit, tasks} (scheduler
    state or ``identity()["workers"]``). ``metadata``: address → the record each
    worker published with ``set_metadata`` (shell address, kept-alive state).
    """
    metadata = metadata if isinstance(metadata, Mapping) else {}
    records = []
    for address, info in workers.items():
        published = metadata.get(address)
        published = dict(published) if isinstance(published, Mapping) else {}
        status = str(info.get("status", "unknown"))
        if published.get("status") == KEPT_ALIVE:
            status = KEPT_ALIVE
        known = {
            "name": str(info.get("name", address)),
            "address": address,
            "status": status,
            "nthreads": int(info.get("nthreads") or 0),
            "memory_limit": int(info.get("memory_limit") or 0),
            "tasks": int(info.get("tasks") or 0),
        }
        records.append(_record({**published, **known}, known))
    live_names = {r.name for r in records}
    for address, data in (remembered or {}).items():
        if address in workers or str(data.get("name")) in live_names:
            continue
        known = {"address": address, "status": KEPT_ALIVE}
        records.append(_record({**data, **known}, {"name": data.get("name", address), **known}))
    return sorted(records, key=lambda r: (r.name, r.address))


def _record(published: dict[str, Any], known: dict[str, Any]) -> WorkerRecord:
    """The record from a worker's published fields; from what the scheduler knows
    alone when they do not have the record's shape."""
    try:
        return WorkerRecord.from_msg(published)
    except ProtocolError:
        return WorkerRecord.from_msg(known)


def _bare(address: str) -> str:
    return address.split("://", 1)[-1]


def resolve(records: Iterable[WorkerRecord], query: str) -> WorkerRecord:
    """The one worker ``query`` names: exact name, exact worker or shell address (with or
    without protocol), else an unambiguous prefix of a name or an address."""
    records = list(records)
    query = str(query).strip()
    for exact in (
        lambda r: r.name == query,
        lambda r: query in (r.address, r.shell_address),
        lambda r: _bare(query) in (_bare(r.address), _bare(r.shell_address or "\0")),
    ):
        found = [r for r in records if exact(r)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise _ambiguous(query, found)
    matches = [
        r
        for r in records
        if r.name.startswith(query)
        or r.address.startswith(query)
        or _bare(r.address).startswith(_bare(query))
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise _ambiguous(query, matches)
    known = ", ".join(r.name for r in records) or "none"
    raise WorkerNotFound(
        f"No worker named {query!r}. Known workers: {known}",
        hint="Use a name, an address or an unambiguous prefix (see `dask worker list`).",
    )


def _ambiguous(query: str, matches: list[WorkerRecord]) -> WorkerNotFound:
    names = ", ".join(f"{r.name} ({r.address})" for r in matches)
    return WorkerNotFound(
        f"{query!r} matches several workers: {names}",
        hint="Give the full name or address.",
    )
