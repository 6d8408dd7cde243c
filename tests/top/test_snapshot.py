"""The snapshot feature and the poller, against an in-process Scheduler and Workers."""

from __future__ import annotations

import asyncio
import json
import logging

import dask
import pytest
from distributed import Client, Scheduler, Worker

from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.service import features
from dask_cli.errors import ConnectionFailed
from dask_cli.top import feature, protocol
from dask_cli.top.poller import NoSnapshotFeature, SnapshotPoller, fetch_once

pytestmark = pytest.mark.timeout(60)

HOST = {"host": "127.0.0.1", "dashboard": False}


def top_of(scheduler):
    return features.get(scheduler, "top")


async def wait_for(predicate, timeout=15):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_snapshot_of_a_working_cluster():
    async with Scheduler(**HOST, preload=["dask_cli.debug"]) as s:  # installs the feature
        async with (
            Worker(s.address, host="127.0.0.1", nthreads=2, name="alpha") as a,
            Worker(s.address, host="127.0.0.1", nthreads=1, name="beta"),
            Client(s.address, asynchronous=True) as client,
        ):
            held = client.map(lambda x: x + 1, range(50), key=[f"inc-{i}" for i in range(50)])
            await client.gather(held)
            bad = client.submit(lambda: 1 / 0, key="boom-1")
            await wait_for(lambda: bad.status == "error")
            top = top_of(s)
            await wait_for(lambda: sum(top.throughput.per_second()) > 0)  # sampled once a second
            await wait_for(
                lambda: all(ws.metrics.get("task_counts") is not None for ws in s.workers.values())
            )

            snap = await fetch_once(ClientSettings(scheduler=s.address))

            assert snap.address == s.address
            assert {w.name for w in snap.workers} == {"alpha", "beta"}
            assert snap.workers_total == 2
            alpha = next(w for w in snap.workers if w.name == "alpha")
            assert alpha.address == a.address and alpha.status == "running"
            assert alpha.nthreads == 2 and alpha.memory and alpha.memory > 0
            assert alpha.last_seen is not None and alpha.last_seen < 10
            assert snap.totals.workers == 2 and snap.totals.threads == 3
            assert snap.totals.tasks["memory"] == 50 and snap.totals.tasks["erred"] == 1
            assert top.throughput.finished(s) == 51  # into memory or erred since it started
            assert 0 < max(snap.totals.throughput) and snap.totals.tasks_per_second > 0
            prefixes = {p.name: p for p in snap.prefixes}
            assert prefixes["inc"].memory == 50 and prefixes["inc"].done == 50
            assert prefixes["boom"].erred == 1
            assert [e.key for e in snap.erred] == ["boom-1"]
            assert "ZeroDivisionError" in snap.erred[0].exception
            assert any("Register worker" in line.message for line in snap.logs)
            assert snap.paused == []


async def test_worker_table_is_capped_in_the_requested_order():
    async with Scheduler(**HOST, preload=["dask_cli.top.feature"]) as s:
        workers = [Worker(s.address, host="127.0.0.1", nthreads=1, name=f"w{i}") for i in range(4)]
        await asyncio.gather(*workers)
        try:
            answer = top_of(s).snapshot(limit=2, sort="name", reverse=True)
            snap = protocol.decode(answer)
            assert [w.name for w in snap.workers] == ["w3", "w2"]
            assert snap.workers_total == 4
            # The hard cap holds whatever the client asks.
            assert len(protocol.decode(top_of(s).snapshot(limit=10**9)).workers) == 4
            assert feature.install(s) is top_of(s)  # installing again changes nothing
        finally:
            await asyncio.gather(*(w.close() for w in workers))


async def test_log_tail_is_sent_once():
    async with Scheduler(**HOST, preload=["dask_cli.top.feature"]) as s:
        poller = SnapshotPoller(ClientSettings(scheduler=s.address))
        try:
            first = await poller.fetch()
            assert len(first.logs) == len(top_of(s).snapshot(log_since=0)["logs"]) > 0
            # The next answer carries only what was logged since.
            since = first.logs[-1].time
            assert top_of(s).snapshot(log_since=since)["logs"] == []
            logging.getLogger("distributed.scheduler").warning("a line for dask top")
            second = await poller.fetch()
            assert second.logs[-1].message == "a line for dask top"
            assert second.logs[-1].level == "WARNING"
            assert len(second.logs) == len(first.logs) + 1  # kept by the poller
        finally:
            await poller.close()


async def test_kept_alive_worker_stays_listed_after_leaving():
    keep = dask.config.set({"cli.keepalive.enabled": True})  # read when the worker starts
    async with Scheduler(**HOST, preload=["dask_cli.debug"]) as s:
        # Its lifetime ends: it leaves the scheduler, kept alive.
        with keep:
            worker = Worker(
                s.address,
                host="127.0.0.1",
                nthreads=1,
                name="kept",
                preload=["dask_cli.debug"],
                lifetime="1s",
            )
            async with worker as w:
                address = w.address
                await wait_for(lambda: address not in s.workers)

                def rows():
                    return protocol.decode(top_of(s).snapshot()).workers

                await wait_for(lambda: [r.status for r in rows()] == ["kept-alive"])
                snap = protocol.decode(top_of(s).snapshot())
                (row,) = snap.workers
                assert (row.name, row.address, row.status) == ("kept", address, "kept-alive")
                assert "--lifetime" in row.kept_alive_reason
                assert row.memory is None and row.cpu is None  # no heartbeats any more
                assert snap.totals.workers == 0


async def test_scheduler_without_the_feature_says_so():
    async with Scheduler(**HOST) as s:
        with pytest.raises(NoSnapshotFeature, match="does not serve dask top") as info:
            await fetch_once(ClientSettings(scheduler=s.address))
        assert "--preload dask_cli.debug" in info.value.hint


async def test_scheduler_gone_then_found_again_through_its_file(tmp_path):
    scheduler_file = tmp_path / "scheduler.json"
    settings = ClientSettings(scheduler_file=str(scheduler_file), timeout=2)
    poller = SnapshotPoller(settings)
    try:
        async with Scheduler(**HOST, preload=["dask_cli.top.feature"]) as first:
            scheduler_file.write_text(json.dumps({"address": first.address}))
            assert (await poller.fetch()).address == first.address
        with pytest.raises(ConnectionFailed, match=first.address):
            await poller.fetch()
        async with Scheduler(**HOST, preload=["dask_cli.top.feature"]) as second:
            scheduler_file.write_text(json.dumps({"address": second.address}))
            assert (await poller.fetch()).address == second.address
    finally:
        await poller.close()


def test_malformed_answers_are_refused():
    for answer in (None, {"op": "error"}, {"version": 1}, {"version": 99}):
        with pytest.raises(protocol.SnapshotError):
            protocol.decode(answer)


async def test_tasks_paused_at_breakpoint_are_listed():
    def stops_here():
        breakpoint()  # noqa: T100 - the point of the test
        return 1

    async with Scheduler(**HOST, preload=["dask_cli.debug"]) as s:
        async with (
            Worker(s.address, host="127.0.0.1", nthreads=1, name="dbg", preload=["dask_cli.debug"]),
            Client(s.address, asynchronous=True) as client,
        ):
            future = client.submit(stops_here, key="stops-here-1")
            await wait_for(lambda: protocol.decode(top_of(s).snapshot()).paused, timeout=30)
            (pause,) = protocol.decode(top_of(s).snapshot()).paused
            assert (pause.key, pause.worker, pause.function) == (
                "stops-here-1",
                "dbg",
                "stops_here",
            )
            # Pickled by value, so the file is "<dynamic-code>"; the line is the call's.
            assert pause.where.endswith(f":{stops_here.__code__.co_firstlineno + 1}")
            assert pause.since and pause.attached is None
            del future


async def test_kept_alive_record_of_a_live_worker_is_read_from_the_registry():
    """The snapshot skips the shell plugin's registry while no worker record says
    kept-alive; one published record that does must still show."""
    async with Scheduler(**HOST, preload=["dask_cli.debug"]) as s:
        async with (
            Worker(s.address, host="127.0.0.1", nthreads=1, name="a", preload=["dask_cli.debug"]),
            Worker(s.address, host="127.0.0.1", nthreads=1, name="b", preload=["dask_cli.debug"]),
        ):
            workers = s.get_metadata(keys=["dask-cli", "workers"], default={})
            await wait_for(lambda: len(workers) == 2)
            await wait_for(lambda: all(ws.status.name == "running" for ws in s.workers.values()))
            top = top_of(s)
            snap = protocol.decode(top.snapshot())
            assert sorted((w.name, w.status) for w in snap.workers) == [
                ("a", "running"),
                ("b", "running"),
            ]
            address = next(w.address for w in snap.workers if w.name == "a")
            record = {**workers[address], "status": "kept-alive", "kept_alive_reason": "why"}
            s.set_metadata(keys=["dask-cli", "workers", address], value=record)

            rows = {w.name: w for w in protocol.decode(top.snapshot()).workers}
            assert (rows["a"].status, rows["a"].kept_alive_reason) == ("kept-alive", "why")
            assert (rows["b"].status, rows["b"].kept_alive_reason) == ("running", None)
