"""Faults of a client in the middle of its session, each repeated on one real worker:
the connection dropped (mid-output, in ``time.sleep``, in ``input()``, in an
``await``, during a completion) and Ctrl-C (a tight print loop, a busy loop,
``time.sleep``, ``input()``, an ``await``, a burst of 100). After every repetition a
fresh session must evaluate and answer the stacks request; after each fault,
``dask worker stack`` through the real CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from fault_checks import fresh_session_answers, stack_command_answers

PRINT_LOOP = "for i in range(10**8):\n    print(i)"
BUSY_LOOP = "print('ready')\nwhile True:\n    pass"
SLEEP = "import time\nprint('ready')\ntime.sleep(2)"
INPUT = "print('ready')\nline = input('> ')"
AWAIT = "import asyncio\nprint('ready')\nawait asyncio.sleep(30)"
# Bounds on waits (never sleeps): the machine is shared.
STARTED_TIMEOUT = 10.0
ANSWER_TIMEOUT = 5.0


async def _open(address: str):  # noqa: ANN202
    from dask_cli.debug.client.connection import ShellConnection

    return await ShellConnection.open(address, timeout=5)


async def _start(conn, source: str) -> tuple[asyncio.Future, asyncio.Event]:  # noqa: ANN001
    """Start ``source``; the event is set once it printed (or asked for input)."""
    started = asyncio.Event()

    async def on_input(prompt: str) -> str | None:
        started.set()
        await asyncio.sleep(60)  # never answers: the fault comes first
        return None

    task = asyncio.ensure_future(
        conn.eval(source, mode="exec", on_output=lambda s, t: started.set(), on_input=on_input)
    )
    await _within(started.wait(), STARTED_TIMEOUT, "the code to start")
    return task, started


async def _within(awaitable, seconds: float, what: str):  # noqa: ANN001, ANN202
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"no answer within {seconds:g} s: {what}") from None


def _drop(conn) -> None:  # noqa: ANN001
    """The client vanishes: the TCP connection is cut, no bye, no interrupt."""
    conn.comm.abort()
    conn._reader.cancel()


async def _drop_during(address: str, source: str) -> None:
    conn = await _open(address)
    task, _ = await _start(conn, source)
    _drop(conn)
    task.cancel()


async def _drop_during_completion(address: str) -> None:
    conn = await _open(address)
    task = asyncio.ensure_future(conn.complete("import collections; collections.Ord", 34))
    await asyncio.sleep(0)  # the request is written; the answer is not in yet
    _drop(conn)
    task.cancel()


async def _ctrl_c(address: str, source: str, interrupts: int = 1) -> None:
    conn = await _open(address)
    try:
        task, _ = await _start(conn, source)
        for _ in range(interrupts):
            await conn.interrupt()
        result = await _within(task, ANSWER_TIMEOUT, "the interrupted result")
        assert result.status == "interrupted", result
        # The session goes on.
        after = await _within(conn.eval("1+1"), ANSWER_TIMEOUT, "1+1 after the interrupt")
        assert after.value == "2", after
    finally:
        await conn.close()


@dataclass(frozen=True)
class Fault:
    name: str
    run: Callable[[str], Awaitable[None]]
    repeats: int


FAULTS = [
    Fault("drop-mid-output", lambda a: _drop_during(a, PRINT_LOOP), 20),
    Fault("drop-during-sleep", lambda a: _drop_during(a, SLEEP), 10),
    Fault("drop-during-input", lambda a: _drop_during(a, INPUT), 20),
    Fault("drop-during-await", lambda a: _drop_during(a, AWAIT), 20),
    Fault("drop-during-completion", _drop_during_completion, 20),
    Fault("ctrl-c-print-loop", lambda a: _ctrl_c(a, PRINT_LOOP), 20),
    Fault("ctrl-c-busy-loop", lambda a: _ctrl_c(a, BUSY_LOOP), 20),
    Fault("ctrl-c-sleep", lambda a: _ctrl_c(a, SLEEP), 10),
    Fault("ctrl-c-input", lambda a: _ctrl_c(a, INPUT), 20),
    Fault("ctrl-c-await", lambda a: _ctrl_c(a, AWAIT), 20),
    Fault("ctrl-c-burst-of-100", lambda a: _ctrl_c(a, PRINT_LOOP, interrupts=100), 5),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_then_a_fresh_session_answers(target, fault: Fault) -> None:  # noqa: ANN001
    async def main() -> None:
        for attempt in range(fault.repeats):
            try:
                await fault.run(target.shell_address)
                await fresh_session_answers(target.shell_address)
            except BaseException as exc:
                raise AssertionError(f"{fault.name}, repetition {attempt + 1}: {exc!r}") from exc

    asyncio.run(main())
    stack_command_answers(target)
