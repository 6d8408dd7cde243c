"""Live worker names for ``dask worker shell <Tab>``: asked from a real scheduler."""

from __future__ import annotations

import asyncio

import click
import pytest
from distributed import Scheduler, Worker

from dask_cli.debug.client.name_completion import complete_worker_name


def context(**params) -> click.Context:
    ctx = click.Context(click.Command("shell"))
    ctx.params = params
    return ctx


@pytest.mark.timeout(60)
async def test_names_of_running_workers():
    async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler:
        async with (
            Worker(scheduler.address, host="127.0.0.1", name="alpha", nthreads=1),
            Worker(scheduler.address, host="127.0.0.1", name="alps", nthreads=1),
            Worker(scheduler.address, host="127.0.0.1", name="beta", nthreads=1) as beta,
        ):
            ctx = context(scheduler=scheduler.address)
            # click calls completion synchronously, in a process with no event loop.
            names = await asyncio.to_thread(complete_worker_name, ctx, None, "al")
            assert names == ["alpha", "alps"]
            assert await asyncio.to_thread(complete_worker_name, ctx, None, "") == [
                "alpha",
                "alps",
                "beta",
            ]
            by_address = await asyncio.to_thread(complete_worker_name, ctx, None, beta.address)
            assert by_address == [beta.address]


@pytest.mark.timeout(30)
def test_silent_when_nothing_answers(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    assert complete_worker_name(context(scheduler="tcp://127.0.0.1:1"), None, "") == []
    assert complete_worker_name(context(scheduler="not an address"), None, "") == []
    assert complete_worker_name(context(scheduler_file="/nonexistent.json"), None, "") == []
    assert complete_worker_name(context(), None, "") == []  # no scheduler configured
