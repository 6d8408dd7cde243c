"""Jobs on a cluster that knows nothing of dask-cli: distributed's own in-process
Scheduler and Worker, no preload. The client brings the registry with it."""

from __future__ import annotations

import pytest
from distributed import Scheduler, Worker

from dask_cli.debug.client.settings import ClientSettings
from dask_cli.jobs import client as jobs
from dask_cli.jobs import protocol

pytestmark = pytest.mark.timeout(60)


async def test_submit_and_follow_on_distributeds_own_cluster(tmp_path):
    path = tmp_path / "hello.py"
    path.write_text("import sys\nprint('out', sys.argv[1])\nprint('err', file=sys.stderr)\n")
    async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler:
        async with Worker(scheduler.address, host="127.0.0.1", nthreads=1):
            assert protocol.PLUGIN_NAME not in scheduler.plugins
            settings = ClientSettings(scheduler=scheduler.address)
            with pytest.raises(jobs.NoJobRegistry):
                await jobs.list_jobs(settings)
            chunks: list[tuple[str, bytes]] = []
            record = await jobs.submit_and_follow(
                settings,
                jobs.SubmitRequest(script=str(path), args=["x"]),
                on_submitted=lambda submitted: None,
                on_output=lambda stream, data: chunks.append((stream, data)),
            )
            assert record.state == protocol.SUCCEEDED
            assert (protocol.STDOUT, b"out x\n") in chunks
            assert (protocol.STDERR, b"err\n") in chunks
            assert protocol.PLUGIN_NAME in scheduler.plugins
            listed = await jobs.list_jobs(settings)
            assert [r.key for r in listed] == [record.key]
