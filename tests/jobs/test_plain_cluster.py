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
            assert await jobs.list_jobs(settings) == []  # no registry yet: no jobs
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


async def test_a_dropped_record_says_so_and_its_output_goes(tmp_path):
    import asyncio

    import dask.config

    path = tmp_path / "hello.py"
    path.write_text("print('hi')\n")
    with dask.config.set({"cli.job.max-records": 1}):
        async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler:
            async with Worker(scheduler.address, host="127.0.0.1", nthreads=1) as worker:
                settings = ClientSettings(scheduler=scheduler.address)
                request = jobs.SubmitRequest(script=str(path))
                first = await jobs.submit_and_follow(
                    settings, request, lambda s: None, lambda stream, data: None
                )
                output = worker.dask_cli_jobs.jobs[first.key].directory
                assert (output / "stdout").read_bytes() == b"hi\n"
                await jobs.submit_and_follow(settings, request, lambda s: None, lambda *a: None)
                with pytest.raises(jobs.JobNotFound, match="was dropped: the scheduler keeps "):
                    await jobs.status(settings, first.key)
                for _ in range(100):
                    if not output.exists():
                        break
                    await asyncio.sleep(0.05)
                assert not output.exists()
