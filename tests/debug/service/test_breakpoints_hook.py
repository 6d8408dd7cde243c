"""The breakpoint hook in-process: what pauses and what does not.

An in-process scheduler and worker (real ones: nothing of distributed is mocked);
the process-wide hooks are put back after each test.
"""

from __future__ import annotations

import asyncio
import pdb
import sys
import threading
import time

import pytest

from dask_cli.debug.service import breakpoints


@pytest.fixture
def hooks():
    """Our hooks over a recording "previous" hook; both restored afterwards."""
    calls: list[str] = []
    saved = sys.breakpointhook, pdb.set_trace, breakpoints._previous_hook
    sys.breakpointhook = lambda *a, **k: calls.append(threading.current_thread().name)
    try:
        yield calls
    finally:
        sys.breakpointhook, pdb.set_trace, breakpoints._previous_hook = saved


def pauses_then_returns(x: int) -> int:
    breakpoint()
    return x + 1


async def async_task(x: int) -> int:
    breakpoint()
    return x + 1


def run_cluster(body, **config):  # noqa: ANN001, ANN201
    import dask
    from distributed import Client, Scheduler, Worker

    async def main():  # noqa: ANN202
        async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as s:
            async with Worker(s.address, host="127.0.0.1", nthreads=2) as w:
                found = breakpoints.install(w)
                async with Client(s.address, asynchronous=True) as c:
                    return await body(c, w, found)

    with dask.config.set({f"cli.{k}": v for k, v in config.items()}):
        return asyncio.run(main())


@pytest.mark.timeout(30)
def test_code_outside_a_task_keeps_its_hook(hooks) -> None:  # noqa: ANN001
    async def body(c, w, found):  # noqa: ANN001, ANN202
        breakpoint()  # the event loop's thread, not a task
        await asyncio.get_running_loop().run_in_executor(None, breakpoint)
        return found.list()

    assert run_cluster(body) == []
    assert len(hooks) == 2  # both went to the hook that was there before


@pytest.mark.timeout(30)
def test_pythonbreakpoint_0_turns_them_off(hooks, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("PYTHONBREAKPOINT", "0")

    async def body(c, w, found):  # noqa: ANN001, ANN202
        return await c.submit(pauses_then_returns, 1)

    assert run_cluster(body) == 2
    assert hooks == []


@pytest.mark.timeout(30)
def test_an_async_task_is_not_paused(hooks, caplog) -> None:  # noqa: ANN001
    async def body(c, w, found):  # noqa: ANN001, ANN202
        result = await c.submit(async_task, 1)
        return result, found.list()

    result, pauses = run_cluster(body)
    assert result == 2 and pauses == [] and hooks == []
    assert "breakpoint() in an async task skipped" in caplog.text


@pytest.mark.timeout(30)
def test_a_pause_times_out_and_pdb_set_trace_pauses_too(hooks) -> None:  # noqa: ANN001
    def with_set_trace(x: int) -> int:
        import pdb as stdlib_pdb

        stdlib_pdb.set_trace()
        return x * 3

    async def body(c, w, found):  # noqa: ANN001, ANN202
        future = c.submit(with_set_trace, 2)
        while not found.list():
            await asyncio.sleep(0.02)
        [pause] = found.list()
        start = time.monotonic()
        return pause, await future, time.monotonic() - start

    pause, result, waited = run_cluster(body, **{"debug.breakpoint-timeout": "0.5s"})
    assert result == 6 and hooks == []
    assert pause.function == "with_set_trace" and pause.key.startswith("with_set_trace-")
    assert 0.2 < waited < 5


def test_timeout_setting() -> None:
    import dask

    for value, seconds in (("5 minutes", 300.0), (0, 0.0), ("0", 0.0), ("2s", 2.0), (3, 3.0)):
        with dask.config.set({"cli.debug.breakpoint-timeout": value}):
            assert breakpoints.breakpoint_timeout() == seconds
