"""Load a client can put on the service: 50 sessions at once, 20 connections that never
say hello, and a client that reads nothing while its code prints 200 MB (the worker's
memory must stay bounded, and other sessions answer meanwhile)."""

from __future__ import annotations

import asyncio

import pytest
from fault_checks import code_stops, fresh_session_answers, stack_command_answers

from dask_cli.debug import protocol

RSS = "__import__('psutil').Process().memory_info().rss"
MiB = 2**20


async def _rss(address: str) -> int:
    from dask_cli.debug.client.connection import ShellConnection

    async with await ShellConnection.open(address, timeout=5) as conn:
        return int((await conn.eval(RSS)).value)


@pytest.mark.timeout(120)
def test_fault_50_concurrent_sessions(target) -> None:  # noqa: ANN001
    from dask_cli.debug.client.connection import ShellConnection

    async def one(n: int) -> None:
        out: list[str] = []
        async with await ShellConnection.open(target.shell_address, timeout=20) as conn:
            result = await conn.eval(
                f"import time\ntime.sleep(0.2)\nprint({n} * 2)",
                mode="exec",
                on_output=lambda s, t: out.append(t),
            )
            assert result.status == "ok", result
            assert "".join(out) == f"{n * 2}\n"

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(50))), 60)
        await fresh_session_answers(target.shell_address)

    for _ in range(2):
        asyncio.run(main())
    stack_command_answers(target)


@pytest.mark.timeout(120)
def test_fault_20_connections_that_never_say_hello(target) -> None:  # noqa: ANN001
    from distributed.comm import connect

    async def main() -> None:
        silent = [await connect(target.shell_address) for _ in range(20)]
        try:
            await fresh_session_answers(target.shell_address)
        finally:
            for comm in silent:
                comm.abort()
        await fresh_session_answers(target.shell_address)

    asyncio.run(main())
    stack_command_answers(target)


@pytest.mark.timeout(120)
def test_fault_client_reads_nothing_while_200mb_print(target) -> None:  # noqa: ANN001
    from distributed.comm import connect

    source = "line = 'x' * 1023\nfor _ in range(200 * 1024):\n    print(line)\n"

    async def main() -> None:
        before = await _rss(target.shell_address)
        comm = await connect(target.shell_address, deserialize=False)
        try:
            await comm.write(protocol.Hello(version=protocol.PROTOCOL_VERSION).to_msg())
            await comm.write(
                protocol.Eval(id=1, source=source, mode="exec", filename="<200mb>").to_msg()
            )
            # Never read. The code prints until the buffers are full, then waits.
            peak = before
            for _ in range(20):
                await asyncio.sleep(0.1)
                peak = max(peak, await _rss(target.shell_address))
            await fresh_session_answers(target.shell_address)  # meanwhile, others answer
        finally:
            comm.abort()
        assert peak - before < 64 * MiB, f"worker grew {(peak - before) / MiB:.0f} MiB"
        await code_stops(target.shell_address, "<200mb>")
        await fresh_session_answers(target.shell_address)

    asyncio.run(main())
    stack_command_answers(target)
