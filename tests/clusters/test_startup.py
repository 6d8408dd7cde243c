"""How a named cluster starts (forked worker processes, readiness pushed) and how it is
asked (the holder's JSON control protocol, which needs no distributed on our side)."""

from __future__ import annotations

import asyncio
import json
import os

import psutil
import pytest

from dask_cli.clusters import protocol
from dask_cli.testing import probe_imports
from tests.clusters.conftest import dask, holder_log, listing


def _worker_parents(address: str) -> list[str]:
    from distributed import Client

    with Client(address, timeout=30) as client:
        pids = list(client.run(os.getpid).values())
    return [" ".join(psutil.Process(pid).parent().cmdline()) for pid in pids]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("method", [None, "spawn"])
def test_workers_fork_from_a_forkserver_unless_configured(state_dir, monkeypatch, method):
    if method:
        monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD", method)
    dask("cluster", "start", "forked", "--workers", "2", "--nthreads", "1")
    try:
        record = listing("forked")
        assert (record["status"], record["workers"]) == ("running", 2), record
        parents = _worker_parents(record["scheduler_address"])
        assert len(parents) == 2
        forked = ["multiprocessing.forkserver" in parent for parent in parents]
        # Forked: the forkserver is the parent; spawned: the holder itself is.
        assert forked == [method is None] * 2, parents
        # Every worker still has the shell service.
        shell = dask("worker", "shell", "0", "--cluster", "forked", "-c", "print(6 * 7)")
        assert shell.stdout.strip() == "42"
    except BaseException:
        print(holder_log(state_dir, "forked"))
        raise
    finally:
        dask("cluster", "stop", "forked", check=False)
    assert not (state_dir / "forked").exists()


@pytest.mark.timeout(120)
def test_list_asks_holders_without_importing_distributed(state_dir):
    dask("cluster", "start", "light", "--workers", "1", "--nthreads", "1")
    try:
        probe = probe_imports("cluster", "list", "--json")
        assert probe.exit_code == 0
        assert probe.heavy_modules == []
        [record] = json.loads(probe.output)
        assert (record["name"], record["status"], record["workers"]) == ("light", "running", 1)
    finally:
        dask("cluster", "stop", "light", "--force", check=False)


def test_control_protocol_replies_refuses_and_reports_failures():
    async def main() -> None:
        async def info(token: str | None = None) -> dict:
            if token != "secret":
                raise protocol.Unauthorized("wrong token for this cluster")
            return {"workers": [1, 2]}

        async def scale(token: str | None = None, n: int = 0) -> dict:
            raise ValueError(f"cannot scale to {n!r} workers")

        server, address = await protocol.serve({protocol.INFO: info, protocol.SCALE: scale})
        try:
            assert address.startswith("tcp://127.0.0.1:")
            assert await protocol.request(address, protocol.INFO, 5, token="secret") == {
                "workers": [1, 2]
            }
            with pytest.raises(protocol.Unauthorized):
                await protocol.request(address, protocol.INFO, 5, token="guess")
            with pytest.raises(protocol.RemoteError, match="ValueError: cannot scale to -1"):
                await protocol.request(address, protocol.SCALE, 5, token="secret", n=-1)
            with pytest.raises(protocol.RemoteError, match="KeyError"):
                await protocol.request(address, "no-such-op", 5)
            with pytest.raises(protocol.RemoteError, match="TypeError"):
                await protocol.request(address, protocol.INFO, 5, surprise=1)
        finally:
            server.close()
            await server.wait_closed()
        with pytest.raises(OSError):
            await protocol.request(address, protocol.INFO, 5, token="secret")

    asyncio.run(main())
