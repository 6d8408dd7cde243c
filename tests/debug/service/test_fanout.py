"""``exec`` through the scheduler (``dask_cli.debug.service.fanout``), in-process: a
scheduler and workers with the ``dask_cli.debug`` preload, and without the fan-out."""

from __future__ import annotations

import asyncio
import time

import pytest
from distributed import Scheduler, Worker

from dask_cli.debug.client import api
from dask_cli.debug.client.settings import ClientSettings
from dask_cli.debug.service import features

pytestmark = pytest.mark.timeout(90)

PRELOAD = ["dask_cli.debug"]


class Recorder(api.ExecListener):
    def __init__(self):
        self.events: list[tuple] = []

    def start(self, names):
        self.events.append(("start", tuple(names)))

    def output(self, name, stream, text):
        self.events.append(("output", name, stream, text))

    def done(self, outcome):
        self.events.append(("done", outcome.name, outcome.status))


async def shells_published(settings, n):
    deadline = time.monotonic() + 30
    while sum(1 for r in await api.list_workers(settings) if r.shell_address) < n:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_exec_through_the_scheduler_and_without_it():
    where = {"host": "127.0.0.1", "dashboard_address": ":0"}
    async with Scheduler(preload=PRELOAD, **where) as scheduler:
        async with (
            Worker(scheduler.address, name="a", preload=PRELOAD, host="127.0.0.1"),
            Worker(scheduler.address, name="b", preload=PRELOAD, host="127.0.0.1"),
        ):
            settings = ClientSettings(scheduler=scheduler.address, timeout=10)
            await shells_published(settings, 2)
            assert features.get(scheduler, "exec-fanout") is not None
            code = (
                "import sys\nprint('out', worker.name)\nprint('err', file=sys.stderr)\n"
                "if worker.name == 'b': raise ValueError('no')"
            )
            for fanout in (True, False):
                if not fanout:  # a scheduler without the feature: one shell per worker
                    features.unregister(scheduler, "exec-fanout")
                recorder = Recorder()
                outcomes = await api.exec_on_workers(settings, None, code, recorder)
                assert [(o.name, o.status, o.error) for o in outcomes] == [
                    ("a", "ok", None),
                    ("b", "error", None),
                ]
                assert outcomes[0].chunks == [("stdout", "out a\n"), ("stderr", "err\n")]
                assert "ValueError: no" in outcomes[1].traceback
                assert recorder.events[0] == ("start", ("a", "b"))
                for name in ("a", "b"):
                    mine = [e for e in recorder.events if e[1] == name]
                    assert mine[-1][0] == "done" and mine[0][0] == "output"
            # Named targets, and an unknown name, as before.
            outcomes = await api.exec_on_workers(settings, ["b"], "print(1)")
            assert [(o.name, o.chunks) for o in outcomes] == [("b", [("stdout", "1\n")])]
