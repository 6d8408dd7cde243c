"""The dashboard driven by Textual's Pilot against real ``dask`` processes on 127.0.0.1.

Actions are checked by their effects on the workers (keep-alive really switched,
a released worker really exits), not by what the app says it did.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from textual.widgets import DataTable, Static

from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.resolve import resolve_worker
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.testing import process_cluster
from dask_cli.top.app import ConfirmScreen, TextScreen, TopApp

pytestmark = pytest.mark.timeout(180)


def settings_for(cluster) -> ClientSettings:
    return ClientSettings(scheduler_file=cluster.scheduler_file, timeout=30)  # a busy CI box


async def wait_until(pilot, predicate, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def rows(app: TopApp) -> list[list[str]]:
    table = app.query_one("#workers", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def names(app: TopApp) -> list[str]:
    return [row[0] for row in rows(app)]


def select(app: TopApp, name: str) -> None:
    table = app.query_one("#workers", DataTable)
    table.move_cursor(row=names(app).index(name))


async def keepalive_armed(settings: ClientSettings, name: str) -> bool:
    record = await resolve_worker(settings, name)
    conn = await ShellConnection.open(record.shell_address, settings.security(), 10)
    try:
        return conn.target.keepalive
    finally:
        await conn.close()


async def test_lists_workers_and_shows_the_kept_alive_one(top_cluster):
    app = TopApp(settings_for(top_cluster))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: {"w1", "w2", "kept"} <= set(names(app)), "workers")
        status = {row[0]: row[1] for row in rows(app)}
        assert status["w1"] == status["w2"] == "running"
        assert status["kept"] == "kept-alive"
        select(app, "kept")
        await pilot.pause()
        detail = str(app.query_one("#detail", Static).render())
        assert "kept-alive (its --lifetime was reached" in detail
        summary = str(app.query_one("#summary", Static).render())
        assert "2 workers, 1 kept alive" in summary
        # Every column fits the 80x24 terminal.
        table = app.query_one("#workers", DataTable)
        assert table.virtual_size.width <= 80


async def test_sorting_by_memory(top_cluster):
    from distributed import Client

    app = TopApp(settings_for(top_cluster))
    async with Client(top_cluster.scheduler_address, asynchronous=True) as client:
        identity = await client.scheduler.identity(n_workers=-1)
        w2 = next(a for a, w in identity["workers"].items() if w["name"] == "w2")
        big = client.submit(lambda: b"x" * 300_000_000, workers=[w2], key="big-block")
        await big  # held on w2 while the test runs
        async with app.run_test(size=(80, 24)) as pilot:

            def memory(name: str) -> int:
                found = [w for w in app.snapshot.workers if w.name == name] if app.snapshot else []
                return (found[0].memory or 0) if found else 0

            await wait_until(
                pilot, lambda: memory("w2") > memory("w1") + 200_000_000, "w2's memory to grow"
            )
            await pilot.press("M")  # biggest first
            assert names(app)[:2] == ["w2", "w1"]
            assert names(app)[-1] == "kept"  # no metrics: last either way
            await pilot.press("M")  # again: smallest first
            assert names(app)[:2] == ["w1", "w2"]
            assert names(app)[-1] == "kept"
            await pilot.press("N")
            assert names(app) == ["kept", "w1", "w2"]
        del big


async def test_keepalive_stack_and_logs_keys(top_cluster):
    settings = settings_for(top_cluster)
    assert await keepalive_armed(settings, "w1") is False
    app = TopApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "w1" in names(app), "w1")
        select(app, "w1")
        await pilot.press("k")
        for _ in range(100):
            if await keepalive_armed(settings, "w1"):
                break
            await pilot.pause(0.1)
        assert await keepalive_armed(settings, "w1") is True
        await pilot.press("k")
        for _ in range(100):
            if not await keepalive_armed(settings, "w1"):
                break
            await pilot.pause(0.1)
        assert await keepalive_armed(settings, "w1") is False

        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), "the stack")
        assert app.screen.title_text.startswith("stack of w1")
        assert "MainThread" in str(app.screen.text)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, TextScreen), "closed")

        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), "the logs")
        assert app.screen.title_text.startswith("log of w1")
        assert "Registered to" in str(app.screen.text)
        await pilot.press("escape")

        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, TextScreen), "the help")
        assert "keep-alive" in str(app.screen.text)
        await pilot.press("q")  # closes the help, not the app
        await pilot.pause()
        assert app.is_running


async def test_release_key_makes_a_kept_alive_worker_exit(top_cluster, kept_alive_worker):
    doomed = kept_alive_worker(top_cluster, "doomed")
    app = TopApp(settings_for(top_cluster))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "doomed" in names(app), "doomed listed")
        select(app, "doomed")
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the question")
        await pilot.press("y")
        assert await asyncio.to_thread(doomed.wait, 60) == 0
        await wait_until(pilot, lambda: "doomed" not in names(app), "doomed to leave the list")


@pytest.mark.timeout(300)
async def test_survives_the_scheduler_killed_and_restarted(tmp_path):
    with process_cluster(tmp_path, workers=("r1",)) as cluster:
        app = TopApp(ClientSettings(scheduler_file=cluster.scheduler_file, timeout=3))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: "r1" in names(app), "r1")
            old, old_address = cluster.scheduler, cluster.scheduler_address
            os.killpg(old.pid, signal.SIGKILL)
            old.wait(10)
            await wait_until(pilot, lambda: app.error is not None, "the failure to show")
            banner = app.query_one("#banner", Static)
            assert banner.has_class("visible")
            assert "retrying" in str(banner.render())
            assert "r1" in names(app)  # the last data stays on screen

            os.unlink(cluster.scheduler_file)  # a killed scheduler leaves its file behind
            cluster.start_scheduler()
            cluster.start_worker("r2")
            await wait_until(pilot, lambda: "r2" in names(app), "the new scheduler's worker")
            assert app.error is None and not banner.has_class("visible")
            assert app.snapshot.address == cluster.scheduler_address != old_address
            old.close()
