"""The scheduler's job registry, in an in-process scheduler: bounds and claims."""

from __future__ import annotations

import dask.config
import pytest
from distributed import Scheduler

from dask_cli.jobs import protocol
from dask_cli.jobs.protocol import JobRecord
from dask_cli.jobs.registry import JobRegistry

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def registry():
    with dask.config.set({"cli.job.max-records": 3}):
        async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as scheduler:
            plugin = JobRegistry()
            await scheduler.register_scheduler_plugin(plugin, idempotent=True)
            yield scheduler.plugins[protocol.PLUGIN_NAME]


def add(registry: JobRegistry, key: str) -> None:
    answer = registry.submit(JobRecord(key=key, name=key, script="s.py").to_dict())
    assert answer["ok"]


async def test_keeps_the_last_records_and_says_which_were_dropped(registry):
    for n in range(3):
        add(registry, f"job-{n}")
    assert registry.claim("job-0", worker="tcp://127.0.0.1:1")["ok"]  # running: kept
    registry.finished("job-1", exit_code=0)
    registry.finished("job-2", exit_code=1)
    add(registry, "job-3")
    add(registry, "job-4")
    assert list(registry.records) == ["job-0", "job-3", "job-4"]
    assert registry.status("job-1") == {"missing": protocol.MISSING_DROPPED, "max_records": 3}
    assert registry.status("job-9")["missing"] == protocol.MISSING_UNKNOWN
    # Every record live: the bound waits rather than losing a running job.
    add(registry, "job-5")
    assert len(registry.records) == 4


async def test_a_job_is_claimed_once(registry):
    add(registry, "job-a")
    assert registry.claim("job-a", worker="tcp://127.0.0.1:1") == {"ok": True}
    again = registry.claim("job-a", worker="tcp://127.0.0.1:2")
    assert not again["ok"] and "never run twice" in again["reason"]
    registry.remove_worker(registry.scheduler, "tcp://127.0.0.1:1", stimulus_id="test")
    record = registry.records["job-a"]
    assert record.state == protocol.FAILED and "died or left" in record.reason
    assert not registry.claim("job-a", worker="tcp://127.0.0.1:2")["ok"]
    assert not registry.claim("job-unknown", worker="tcp://127.0.0.1:2")["ok"]


@pytest.mark.parametrize(
    "exit_code, cancelled, outcome",
    [
        (0, False, (protocol.SUCCEEDED, None, 0)),
        (3, False, (protocol.FAILED, "exit status 3", 3)),
        (-9, False, (protocol.FAILED, "killed by signal 9 (SIGKILL)", 137)),
        (-15, True, (protocol.CANCELLED, "cancelled", 143)),
    ],
)
async def test_outcomes(registry, exit_code, cancelled, outcome):
    add(registry, "j")
    registry.claim("j", worker="tcp://127.0.0.1:1")
    registry.records["j"].cancel_requested = cancelled
    registry.finished("j", exit_code=exit_code)
    record = registry.records["j"]
    assert (record.state, record.reason, protocol.exit_status(record)) == outcome


async def test_cancel_of_a_pending_job_and_of_a_finished_one(registry):
    add(registry, "p")
    reply = await registry.cancel("p")
    assert reply["record"]["state"] == protocol.CANCELLED
    assert not registry.claim("p", worker="tcp://127.0.0.1:1")["ok"]
    assert (await registry.cancel("p"))["already"] is True


async def test_a_pending_job_whose_task_never_came_fails(registry, monkeypatch):
    from dask_cli.jobs import registry as module

    add(registry, "orphan")
    assert registry.status("orphan")["record"]["state"] == protocol.PENDING
    monkeypatch.setattr(module, "ORPHAN_AFTER", 0.0)
    found = registry.status("orphan")["record"]
    assert found["state"] == protocol.FAILED and "never reached" in found["reason"]
