"""The plugins on a plain distributed cluster (no preload): register, list, resolve,
scheduler shell, and the kept-alive memory of the scheduler plugin."""

from __future__ import annotations

import asyncio
import time

import pytest
from distributed import Client, Scheduler, Worker

from dask_cli.debug import protocol
from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.resolve import list_workers, resolve_scheduler_shell, resolve_worker
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.protocol import KEPT_ALIVE
from dask_cli.debug.service.plugin import ShellSchedulerPlugin, ShellWorkerPlugin

pytestmark = pytest.mark.timeout(60)


async def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_register_plugins_on_plain_cluster():
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
        async with (
            Worker(scheduler.address, host="127.0.0.1", name="plain-1") as w1,
            Worker(scheduler.address, host="127.0.0.1", name="plain-2") as w2,
        ):
            settings = ClientSettings(scheduler=scheduler.address, timeout=5)
            async with Client(scheduler.address, asynchronous=True) as client:
                # Without plugins: no shell anywhere, the client computes records itself.
                records = await list_workers(settings)
                assert [(r.name, r.shell_address) for r in records] == [
                    ("plain-1", None),
                    ("plain-2", None),
                ]
                await client.register_plugin(ShellWorkerPlugin())

                async def published():
                    return all(r.shell_address for r in await list_workers(settings))

                await wait_for(published)  # fallback path: identity() + metadata
                await client.register_plugin(ShellSchedulerPlugin())
                records = await list_workers(settings)  # the plugin's handler
                assert {r.name: r.shell_address for r in records} == {
                    "plain-1": w1.dask_cli_shell.address,
                    "plain-2": w2.dask_cli_shell.address,
                }
            record = await resolve_worker(settings, "plain-2")
            conn = await ShellConnection.open(record.shell_address, None, 5)
            assert (await conn.eval("worker.name")).value == "'plain-2'"
            await conn.close()

            shell = await resolve_scheduler_shell(settings)
            conn = await ShellConnection.open(shell, None, 5)
            assert conn.target.kind == "scheduler"
            assert (await conn.eval("len(scheduler.workers)")).value == "2"
            assert "scheduler" in conn.banner
            await conn.close()

            # By address, without a scheduler: the worker answers its shell address.
            direct = await resolve_worker(ClientSettings(timeout=5), w1.address)
            assert direct.shell_address == w1.dask_cli_shell.address
            # A shell address is accepted as it is.
            direct = await resolve_worker(ClientSettings(timeout=5), w1.dask_cli_shell.address)
            assert direct.shell_address == w1.dask_cli_shell.address


async def test_scheduler_remembers_kept_alive_workers():
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
        plugin = ShellSchedulerPlugin()
        scheduler.add_plugin(plugin)
        await plugin.start(scheduler)
        try:
            settings = ClientSettings(scheduler=scheduler.address, timeout=5)
            async with Worker(scheduler.address, host="127.0.0.1", name="keeper") as w:
                keys = [protocol.METADATA_KEY, "workers", w.address]
                scheduler.set_metadata(
                    keys=keys,
                    value={
                        "name": "keeper",
                        "address": w.address,
                        "shell_address": "tcp://127.0.0.1:1",
                        "status": KEPT_ALIVE,
                        "kept_alive_reason": "scheduler lost",
                        "kept_alive_since": time.time(),
                    },
                )
                address = w.address
            # The worker left the scheduler: it is still listed and resolvable.
            record = await resolve_worker(settings, "keeper")
            assert record.status == KEPT_ALIVE
            assert record.address == address
            assert record.kept_alive_reason == "scheduler lost"
            # Released: its record is no longer kept alive, so it is forgotten.
            scheduler.set_metadata(keys=keys, value={"status": "released"})
            assert [r.name for r in await list_workers(settings)] == []
        finally:
            await plugin.close()


async def test_address_resolves_when_the_scheduler_is_gone():
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
        async with Worker(scheduler.address, host="127.0.0.1", name="orphan") as w:
            await w.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
            dead = ClientSettings(scheduler="tcp://127.0.0.1:1", timeout=10)
            start = time.monotonic()
            record = await resolve_worker(dead, w.address)
            assert record.shell_address == w.dask_cli_shell.address
            assert time.monotonic() - start < 5  # did not wait the whole --timeout
            from dask_cli.errors import ConnectionFailed

            with pytest.raises(ConnectionFailed):
                await resolve_worker(ClientSettings(scheduler="tcp://127.0.0.1:1", timeout=1), "w")
