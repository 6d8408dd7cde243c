"""The nanny's side of keep-alive (``service/nanny.py``), on an in-process Nanny whose
worker is a real process: a crash record instead of a restart, a shell on the nanny
to read it, ``release`` to let the nanny go; and the NannyPlugin's setup/teardown."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import dask.config
import pytest
from distributed import Nanny, Scheduler

from dask_cli import config
from dask_cli.debug import protocol
from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.resolve import list_workers
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.service import features
from dask_cli.debug.service.nanny import CRASH_DIR_ENV, NannyKeepalive

PRELOAD = ["dask_cli.debug"]


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def nanny(scheduler: Scheduler, name: str) -> Nanny:
    return Nanny(
        scheduler.address,
        host="127.0.0.1",
        name=name,
        nthreads=1,
        dashboard_address=":0",
        preload_nanny=PRELOAD,
        preload=PRELOAD,
    )


@pytest.mark.timeout(120)
async def test_a_killed_worker_leaves_its_nanny_up_with_a_crash_record():
    config.register_defaults()
    with dask.config.set({"cli.keepalive.enabled": True}):
        async with Scheduler(host="127.0.0.1", dashboard_address=":0", preload=PRELOAD) as s:
            async with nanny(s, "crasher") as n:
                keeper = n.plugins[NannyKeepalive.name]
                assert features.get(n, NannyKeepalive.name) is keeper
                worker_address = n.worker_address
                os.kill(n.process.process.pid, signal.SIGKILL)

                async def crashed() -> bool:
                    return keeper.crash is not None

                await wait_until(crashed, 30, "the crash record")
                assert keeper.crash.signal == "SIGKILL"
                await asyncio.sleep(1)
                assert not n.is_alive()  # not restarted

                settings = ClientSettings(scheduler=s.address, timeout=10)

                async def listed() -> bool:
                    records = {r.address: r for r in await list_workers(settings)}
                    record = records.get(worker_address)
                    return record is not None and record.status == protocol.KEPT_ALIVE

                await wait_until(listed, 20, "the kept-alive record")
                record = {r.address: r for r in await list_workers(settings)}[worker_address]
                assert record.shell_address == n.dask_cli_shell.address
                assert "the nanny keeps `crash`" in record.kept_alive_reason

                conn = await ShellConnection.open(n.dask_cli_shell.address, None, 10)
                try:
                    assert conn.target.kind == "nanny"
                    assert conn.target.status == protocol.KEPT_ALIVE
                    assert {"crash", "crashes"} <= set(conn.helpers)
                    assert "SIGKILL" in (await conn.eval("crash.describe()")).value
                    result = await conn.request(protocol.Release(id=0))
                    assert result.status == "ok", result
                    assert result.data["kind"] == "nanny"
                finally:
                    await conn.close()

                async def closed() -> bool:
                    return n.status.name == "closed"

                await wait_until(closed, 30, "the released nanny to close")


@pytest.mark.timeout(90)
async def test_the_plugin_sets_up_and_tears_down_cleanly():
    config.register_defaults()
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as s:
        async with nanny(s, "plain") as n:
            keeper = n.plugins[NannyKeepalive.name]
            assert n.env[CRASH_DIR_ENV] == keeper.crash_dir and os.path.isdir(keeper.crash_dir)
            assert protocol.NANNY_KEEPALIVE_HANDLER in n.handlers
            assert n._on_worker_exit == keeper.on_worker_exit
            conn = await ShellConnection.open(n.dask_cli_shell.address, None, 10)
            try:
                result = await conn.request(protocol.Release(id=0))
                assert result.status == "error" and "not kept alive" in result.error
                assert (await conn.eval("crash")).value is None  # nothing crashed
            finally:
                await conn.close()
            # The worker tells its nanny its keepalive switch (the handler's message).
            keeper.handle_keepalive(**protocol.NannyKeepalive(enabled=True).to_msg(), reply=True)
            assert keeper.enabled

            await n.plugin_remove(NannyKeepalive.name)
            assert protocol.NANNY_KEEPALIVE_HANDLER not in n.handlers
            assert features.get(n, NannyKeepalive.name) is None
            assert n._on_worker_exit == Nanny._on_worker_exit.__get__(n)
            assert not os.path.exists(keeper.crash_dir)
