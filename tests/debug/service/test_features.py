"""The feature-registration API: what a feature registers reaches clients through
the core (requests, namespace helpers, record fields, comm handlers), per server."""

from __future__ import annotations

import asyncio

import pytest
from distributed import Scheduler, Worker

from dask_cli.debug import protocol
from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.service import features
from dask_cli.debug.service.plugin import ShellWorkerPlugin
from dask_cli.errors import DaskCliError

pytestmark = pytest.mark.timeout(60)


class Releaser(features.ShellFeature):
    """Answers ``release`` and says so in the record, the namespace and a handler."""

    name = "test-releaser"

    def __init__(self) -> None:
        self.released: list[int] = []
        self.sessions: list[object] = []
        self.closed = False

    def requests(self):
        return {protocol.Release: self.release}

    async def release(self, request, session):
        await asyncio.sleep(0)  # an awaitable answer is awaited
        self.released.append(request.id)
        return {"released": len(self.released)}

    def helpers(self):
        return {
            "released": lambda session: self.sessions.append(session) or self.released,
            "worker": lambda session: "not the worker",  # a core name is never replaced
        }

    def record_fields(self):
        return {"keepalive": True, "kept_alive_reason": "testing", "no_such_field": 1}

    def handlers(self):
        return {"dask_cli_test_releaser": lambda **_: "pong"}

    def close(self):
        self.closed = True


class Refuser(features.ShellFeature):
    name = "test-refuser"

    def requests(self):
        return {protocol.Release: self.refuse, protocol.SetKeepalive: self.refuse}

    def refuse(self, request, session):
        raise DaskCliError("not today", hint="try tomorrow")


class Broken(features.ShellFeature):
    """Every hook fails: the shell must not notice."""

    name = "test-broken"

    def helpers(self):
        return {"fine": lambda session: 1, "bad": lambda session: 1 / 0}

    def record_fields(self):
        raise RuntimeError("broken")


@pytest.fixture
async def workers():
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
        async with (
            Worker(scheduler.address, host="127.0.0.1", name="f1") as a,
            Worker(scheduler.address, host="127.0.0.1", name="f2") as b,
        ):
            for w in (a, b):
                await w.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
            yield a, b


async def test_a_registered_feature_reaches_the_client(workers):
    worker, other = workers
    feature = features.register(worker, Releaser())
    assert features.register(worker, Releaser()) is feature  # idempotent by name
    assert features.registered(worker) == [feature] and features.registered(other) == []

    conn = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    try:
        assert conn.target.keepalive is True
        assert conn.target.kept_alive_reason == "testing"
        assert "released" in conn.helpers and "released" in conn.banner
        assert (await conn.eval("released")).value == "[]"
        assert (await conn.eval("worker.name")).value == "'f1'"
        result = await conn.request(protocol.Release(id=0))
        assert (result.status, result.data) == ("ok", {"released": 1})
        assert feature.sessions and feature.sessions[0].server is worker
    finally:
        await conn.close()
    assert worker.handlers["dask_cli_test_releaser"]() == "pong"

    # The other worker in this process has no such feature.
    conn = await ShellConnection.open(other.dask_cli_shell.address, None, 10)
    try:
        result = await conn.request(protocol.Release(id=0))
        assert result.status == "error"
        assert "does not answer 'release'" in result.error
        assert result.traceback is None  # a service error is not a traceback
        assert "released" not in conn.helpers
    finally:
        await conn.close()

    features.unregister(worker, Releaser.name)
    assert feature.closed
    assert "dask_cli_test_releaser" not in worker.handlers
    assert features.registered(worker) == []


async def test_refusals_and_failing_hooks(workers):
    worker, _ = workers
    features.register(worker, Refuser())
    features.register(worker, Broken())
    conn = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    try:
        result = await conn.request(protocol.Release(id=0))
        assert (result.status, result.error, result.hint) == ("error", "not today", "try tomorrow")
        assert (await conn.eval("fine")).value == "1"
        assert (await conn.eval("'bad' in dir()")).value == "False"
        assert conn.target.name == "f1"  # record_fields failed: the core's fields remain
    finally:
        await conn.close()


async def test_two_features_cannot_answer_one_request(workers):
    worker, _ = workers
    features.register(worker, Releaser())
    with pytest.raises(ValueError, match="both answer 'release'"):
        features.register(worker, Refuser())
    assert [f.name for f in features.registered(worker)] == [Releaser.name]


def test_a_feature_needs_a_name():
    class Nameless(features.ShellFeature):
        pass

    with pytest.raises(ValueError, match="has no name"):
        features.register(object.__new__(type("Server", (), {})), Nameless())
