"""The shell service against malformed clients, and when it must not run."""

from __future__ import annotations

import asyncio
import select

import dask.config
import psutil
import pytest
from distributed import Client, Scheduler, Worker
from distributed.comm import connect

from dask_cli.debug import protocol
from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.service.plugin import ShellWorkerPlugin
from dask_cli.debug.service.server import parse_ports

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def worker():
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
        async with Worker(scheduler.address, host="127.0.0.1", name="w1") as w:
            await w.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
            yield w


async def raw_session(address):
    comm = await connect(address, deserialize=False)
    await comm.write(protocol.Hello(version=protocol.PROTOCOL_VERSION).to_msg())
    welcome = await comm.read()
    assert welcome["op"] == "welcome"
    return comm


async def still_computing(worker):
    async with Client(worker.scheduler.address, asynchronous=True) as client:
        assert await client.submit(lambda: 41 + 1, pure=False) == 42
    conn = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    assert (await conn.eval("1 + 1")).value == "2"
    await conn.close()


@pytest.mark.parametrize(
    "message",
    [
        {"op": "eval", "id": 1},  # missing source
        {"op": "eval", "id": "1", "source": "1"},  # wrong type
        {"op": "eval", "id": 1, "source": 1},
        {"op": "eval", "id": 1, "source": "1", "mode": "single"},
        {"op": "eval", "id": True, "source": "1"},
        {"op": "nonsense", "id": 1},
        {"id": 1},
        {"op": "logs", "id": 1, "n": "ten"},
        {"op": "complete", "id": 1, "source": "x", "cursor": None},
    ],
)
async def test_malformed_requests_get_an_error(worker, message):
    comm = await raw_session(worker.dask_cli_shell.address)
    await comm.write(message)
    reply = await asyncio.wait_for(comm.read(), 10)
    assert reply["op"] == "error"
    if type(message.get("id")) is int:
        assert reply["id"] == 1
    # The connection still works after the error.
    await comm.write(protocol.Eval(id=2, source="1 + 1").to_msg())
    reply = await asyncio.wait_for(comm.read(), 10)
    assert (reply["op"], reply["value"]) == ("result", "2")
    await comm.close()
    await still_computing(worker)


@pytest.mark.parametrize("message", [["eval"], "eval", 42, None])
async def test_non_dict_closes_the_connection(worker, message):
    comm = await raw_session(worker.dask_cli_shell.address)
    await comm.write(message)
    reply = await asyncio.wait_for(comm.read(), 10)
    assert reply["op"] == "error"
    with pytest.raises(OSError):
        await asyncio.wait_for(comm.read(), 10)
    await still_computing(worker)


async def test_huge_source_is_refused(worker):
    comm = await raw_session(worker.dask_cli_shell.address)
    await comm.write({"op": "eval", "id": 1, "source": "#" * (protocol.MAX_SOURCE_CHARS + 1)})
    reply = await asyncio.wait_for(comm.read(), 30)
    assert reply["op"] == "error" and reply["id"] == 1
    await comm.close()
    await still_computing(worker)


async def test_no_hello_is_refused(worker):
    comm = await connect(worker.dask_cli_shell.address, deserialize=False)
    await comm.write({"op": "eval", "id": 1, "source": "1"})
    reply = await asyncio.wait_for(comm.read(), 10)
    assert reply["op"] == "error"
    await comm.close()
    await still_computing(worker)


async def test_wrong_version_is_refused(worker):
    from dask_cli.errors import ConnectionFailed

    comm = await connect(worker.dask_cli_shell.address, deserialize=False)
    await comm.write({"op": "hello", "version": 999})
    reply = await asyncio.wait_for(comm.read(), 10)
    assert reply["op"] == "error" and "version" in reply["message"]
    await comm.close()
    with pytest.raises(ConnectionFailed):
        await ShellConnection.open("tcp://127.0.0.1:1", None, 2)


async def test_shell_address_handler_and_metadata(worker):
    address = worker.dask_cli_shell.address
    async with Client(worker.scheduler.address, asynchronous=True) as client:
        answered = await client.run(lambda dask_worker: dask_worker.dask_cli_shell.address)
        assert answered == {worker.address: address}
        for _ in range(100):
            record = await client.get_metadata(
                [protocol.METADATA_KEY, "workers", worker.address], None
            )
            if record:
                break
            await asyncio.sleep(0.05)
        assert record["shell_address"] == address
        assert record["name"] == "w1"
    assert worker.handlers[protocol.SHELL_ADDRESS_HANDLER]() == address


@pytest.mark.parametrize(
    "settings",
    [
        {"cli.shell.enabled": False},
        {"distributed.worker.blocked-handlers": [protocol.BLOCKED_HANDLER_NAME]},
    ],
)
async def test_service_off(settings):
    with dask.config.set(settings):
        async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
            async with Worker(scheduler.address, host="127.0.0.1") as w:
                await w.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
                assert getattr(w, "dask_cli_shell", None) is None
                assert protocol.SHELL_ADDRESS_HANDLER not in w.handlers


def test_parse_ports():
    assert parse_ports(0) == [0]
    assert parse_ports(None) == [0]
    assert parse_ports("9000") == [9000]
    assert parse_ports("9000:9002") == [9000, 9001, 9002]
    with pytest.raises(ValueError):
        parse_ports("9002:9000")
    with pytest.raises(ValueError):
        parse_ports("abc")


async def test_port_range_gives_each_worker_a_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    # The first port of the range is taken: the service takes the next one.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base))
        taken.listen()
        with dask.config.set({"cli.shell.port": f"{base}:{base + 20}"}):
            async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
                async with (
                    Worker(scheduler.address, host="127.0.0.1") as a,
                    Worker(scheduler.address, host="127.0.0.1") as b,
                ):
                    for w in (a, b):
                        await w.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
                    ports = {int(w.dask_cli_shell.address.rsplit(":", 1)[1]) for w in (a, b)}
    assert len(ports) == 2
    assert all(base < port <= base + 20 for port in ports)


async def test_a_service_that_cannot_start_never_takes_the_server_down():
    from dask_cli.debug.service.plugin import ShellSchedulerPlugin

    with dask.config.set({"cli.shell.port": "not-a-port"}):
        scheduler = Scheduler(host="127.0.0.1", dashboard_address=":0")
        scheduler.add_plugin(ShellSchedulerPlugin())
        async with scheduler:
            async with Worker(scheduler.address, host="127.0.0.1") as w:
                await w.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
                assert getattr(w, "dask_cli_shell", None) is None
                async with Client(scheduler.address, asynchronous=True) as client:
                    assert await client.submit(lambda: 1 + 1) == 2


async def test_ping_is_answered_while_an_eval_runs(worker):
    """The liveness check must not queue behind running code: here the eval is
    blocked in ``input()`` until the ping's answer has arrived."""
    conn = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    pings = []

    async def answer_after_ping(prompt):
        pings.append(await conn.request(protocol.Ping(id=0)))
        return "after ping"

    result = await asyncio.wait_for(
        conn.eval("print(input())", mode="exec", on_input=answer_after_ping), 30
    )
    await conn.close()
    assert result.status == "ok"
    assert [p.status for p in pings] == ["ok"]
    assert protocol.parse_client_message({"op": "ping", "id": 3}) == protocol.Ping(id=3)


async def _until_output_is_stuck(comm, watcher) -> None:
    """Until the service's socket takes no more and the code waits for room: output
    waits. The code's first wait for room is not enough: while the kernel still
    takes more the loop sends on, and a Ctrl-C then finds nothing left to drop."""
    service_socket = _peer_fd(comm.stream.socket)
    for _ in range(200):
        await asyncio.sleep(0.05)
        if _writable(service_socket):
            continue
        await asyncio.sleep(0.05)  # the loop's last send since the socket filled up
        if "_wait_for_room" in await watcher.stacks() and not _writable(service_socket):
            return
    raise AssertionError("the flood never filled the connection")


def _peer_fd(sock) -> int:
    """The file descriptor, in this process (the worker's), of ``sock``'s peer."""
    here, there = sock.getsockname(), sock.getpeername()
    for conn in psutil.Process().net_connections("tcp"):
        if tuple(conn.laddr) == there and tuple(conn.raddr) == here:
            return conn.fd
    raise AssertionError(f"no socket of this process is connected to {here}")


def _writable(fd: int) -> bool:
    poll = select.poll()
    poll.register(fd, select.POLLOUT)
    return bool(poll.poll(0))


async def test_ctrl_c_drops_the_waiting_output_and_the_result_counts_it(worker):
    """A client that reads nothing while the code floods leaves output waiting; Ctrl-C
    drops it and the result says how much (``dropped``), no output message of its own."""
    comm = await raw_session(worker.dask_cli_shell.address)
    flood = "while True:\n    print('x' * 1000)"
    await comm.write(protocol.Eval(id=1, source=flood, mode="exec").to_msg())
    watcher = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
    try:
        await _until_output_is_stuck(comm, watcher)
        await comm.write(protocol.Interrupt(id=1).to_msg())
        stderr = ""
        while True:
            msg = await asyncio.wait_for(comm.read(), 10)
            if msg["op"] == "output" and msg["stream"] == "stderr":
                stderr += msg["text"]
            if msg["op"] == "result":
                break
        assert msg["status"] == "interrupted"
        assert msg["dropped"] > 0
        assert "not shown" not in stderr
        assert protocol.dropped_notice(msg["dropped"]).startswith("[interrupted: ")
        assert protocol.dropped_notice(0) == ""
    finally:
        await watcher.close()
        comm.abort()
    await still_computing(worker)
