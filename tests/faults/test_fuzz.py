"""At least 10,000 seeded malformed messages (random ops, fields, types, sizes,
nesting, raw bytes) to a worker's shell service, then: the worker is alive, a fresh
session answers, ``dask worker stack`` answers and the worker still computes a task.
The same on a ``--keepalive`` worker that has already been kept alive (it keeps its
data instead of taking tasks)."""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

import pytest
from fault_checks import fresh_session_answers, stack_command_answers

from dask_cli.debug import protocol

MESSAGES = 10_000
SEED = 20261201
# Ops that would change the worker if they arrived well-formed: always malformed here.
NEVER_VALID = {"keepalive", "release", "complete", "eval", "input", "interrupt"}


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randrange(-(2**63), 2**63)
    if kind == 3:
        return rng.random() * 10 ** rng.randrange(-5, 300)
    if kind == 4:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(20)))
    if kind == 5:
        return "x" * rng.choice([0, 1, 1000, 1000, 1000, 100_000])
    if kind == 6:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(50)))
    if kind == 7:
        return rng.choice(["eval", "op", "id", "", "\x00", "stacks", "<shell>"])
    if kind in (8, 9):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {
        str(_value(rng, depth + 1))[:20]: _value(rng, depth + 1) for _ in range(rng.randrange(5))
    }


def _field_names() -> list[str]:
    names = {"op", "id", "source", "mode", "filename", "text", "prompt", "cursor", "n"}
    names |= {"enabled", "version", "client", "stream", "status", "value"}
    return sorted(names)


def malformed(rng: random.Random) -> Any:
    """One message the service must survive; mostly dicts, sometimes not."""
    if rng.random() < 0.01:
        return _value(rng)  # not a dict: the service closes the connection
    ops = sorted(protocol.CLIENT_MESSAGES) + ["", "EVAL", "nope", None, 7]
    msg: dict[Any, Any] = {"op": rng.choice(ops)}
    for name in rng.sample(_field_names(), rng.randrange(6)):
        msg[name] = _value(rng)
    if rng.random() < 0.3:
        msg["id"] = rng.randrange(1000)
    if msg["op"] == "bye" or msg["op"] == "hello":
        msg["op"] = "hello "  # keeps the connection for the next messages
    try:
        parsed = protocol.parse_client_message(msg)
    except Exception:
        return msg
    if parsed.op in NEVER_VALID:
        msg["id"] = "not an int"  # well-formed by chance: break it
    return msg


async def _drain(comm: Any) -> None:
    """Read the service's answers, so its writes never wait on us."""
    while True:
        await comm.read()


async def fuzz(address: str, count: int, seed: int) -> int:
    """Send ``count`` malformed messages over as many connections as they close."""
    from distributed.comm import connect
    from distributed.comm.addressing import parse_host_port

    rng = random.Random(seed)
    sent = 0
    hello = protocol.Hello(version=protocol.PROTOCOL_VERSION).to_msg()
    while sent < count:
        comm = await connect(address, deserialize=False)
        reader = asyncio.ensure_future(_drain(comm))
        try:
            if rng.random() < 0.05:  # before the hello: refused, connection closed
                await comm.write(malformed(rng))
                sent += 1
                continue
            await comm.write(hello)
            for _ in range(rng.randrange(50, 500)):
                if comm.closed() or reader.done():
                    break
                await comm.write(malformed(rng))
                sent += 1
        except Exception:
            pass  # closed by the service for a message that is not a dict
        finally:
            await asyncio.sleep(0)
            reader.cancel()
            comm.abort()
    host, port = parse_host_port(address.split("://", 1)[1])
    for _ in range(20):  # and raw bytes that are no comm frame at all
        with socket.create_connection((host, port), timeout=5) as raw:
            raw.sendall(rng.randbytes(rng.randrange(1, 4096)))
        sent += 1
    return sent


@pytest.mark.timeout(180)
def test_fault_fuzzed_messages(target) -> None:  # noqa: ANN001
    from distributed import Client

    sent = asyncio.run(fuzz(target.shell_address, MESSAGES, SEED))
    assert sent >= MESSAGES
    assert target.cluster.workers["f1"].alive()
    asyncio.run(fresh_session_answers(target.shell_address))
    stack_command_answers(target)
    with Client(target.cluster.scheduler_address, timeout="20s") as client:
        future = client.submit(sum, [1, 2, 3], workers=["f1"], pure=False)
        assert future.result(timeout=30) == 6


@pytest.mark.timeout(180)
def test_fault_fuzzed_messages_on_a_kept_alive_worker(kept_alive) -> None:  # noqa: ANN001
    from dask_cli.debug.client.connection import ShellConnection

    sent = asyncio.run(fuzz(kept_alive.shell_address, MESSAGES, SEED + 1))
    assert sent >= MESSAGES
    assert kept_alive.cluster.workers["ka"].alive()
    asyncio.run(fresh_session_answers(kept_alive.shell_address))
    stack_command_answers(kept_alive)

    async def state() -> tuple[str, str]:
        async with await ShellConnection.open(kept_alive.shell_address, timeout=5) as conn:
            held = await conn.eval("sorted(data)")
            return conn.target.status, held.value

    status, held = asyncio.run(state())
    assert status == "kept-alive"
    assert "state-before-error-" in held  # debug/internal_error.py's data is intact
