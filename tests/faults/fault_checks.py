"""What every fault test checks afterwards: a fresh session answers, and so does
``dask worker stack``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from dask_cli.testing import ProcessCluster, run_dask

# A fresh session must evaluate within this long after a fault (the issue: "a second
# or two"); a generous bound for a shared 2-core machine, never a sleep.
FRESH_SESSION_TIMEOUT = 3.0


@dataclass
class FaultTarget:
    """A worker that takes faults: its name, shell address and the cluster."""

    name: str
    shell_address: str
    cluster: ProcessCluster


async def fresh_session_answers(address: str) -> float:
    """A new session evaluates ``1+1`` and the stacks request (what ``dask worker stack``
    sends) is answered, all within ``FRESH_SESSION_TIMEOUT``; returns the seconds taken."""
    from dask_cli.debug.client.connection import ShellConnection

    start = time.monotonic()

    async def check() -> None:
        conn = await ShellConnection.open(address, timeout=FRESH_SESSION_TIMEOUT)
        try:
            result = await conn.eval("1+1")
            assert (result.status, result.value) == ("ok", "2"), result
            assert "MainThread" in await conn.stacks()
        finally:
            await conn.close()

    try:
        await asyncio.wait_for(check(), FRESH_SESSION_TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(
            f"a fresh session did not answer within {FRESH_SESSION_TIMEOUT:g} s"
        ) from None
    return time.monotonic() - start


def stack_command_answers(target: FaultTarget) -> None:
    """``dask worker stack NAME`` through the real CLI."""
    done = run_dask(
        "worker",
        "stack",
        target.name,
        "--scheduler",
        target.cluster.scheduler_address,
        "--timeout",
        "5",
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MainThread" in done.stdout


# Defines ``_running(filename)``: True while a session thread runs code compiled from
# it (only those: the nanny's child process itself runs from "<string>").
STILL_RUNNING = """
import sys, threading
def _running(filename):
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        if not names.get(ident, "").startswith("dask-cli-shell-"):
            continue
        while frame is not None:
            if frame.f_code.co_filename == filename:
                return True
            frame = frame.f_back
    return False
"""


async def code_stops(address: str, filename: str, timeout: float = 5.0) -> None:
    """The code a faulty client started (compiled as ``filename``) stops running."""
    from dask_cli.debug.client.connection import ShellConnection

    conn = await ShellConnection.open(address, timeout=timeout)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await conn.eval(STILL_RUNNING, mode="exec")
        while True:
            result = await conn.eval(f"_running({filename!r})")
            if result.value == "False":
                return
            assert result.value == "True", result
            if loop.time() > deadline:
                stacks = await conn.stacks()  # where it runs: the failure says
                raise AssertionError(
                    f"code from {filename} still runs after {timeout:g} s:\n{stacks}"
                )
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
