"""Faults of a real ``dask worker shell`` process: its stdout closed by ``| head -2``,
and the process stopped with SIGSTOP, then killed. The remote code must stop, the
service must serve the next session, and ``| head`` must look like any Unix command
(no error line, the exit status of SIGPIPE)."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import subprocess

import pytest
from fault_checks import code_stops, fresh_session_answers, stack_command_answers

from dask_cli.testing import dask_command

PRINT_LOOP = "for i in range(10**8): print(i)"


@pytest.mark.timeout(120)
def test_fault_head_closes_stdout(target, tmp_path) -> None:  # noqa: ANN001
    command = shlex.join(
        dask_command("worker", "shell", "f1", "--scheduler", target.cluster.scheduler_address, "-c")
        + [PRINT_LOOP]
    )
    errors = tmp_path / "stderr"
    for attempt in range(5):
        done = subprocess.run(
            ["bash", "-c", f"{command} 2>{errors} | head -2; exit ${{PIPESTATUS[0]}}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        where = f"| head, repetition {attempt + 1}"
        assert done.stdout == "0\n1\n", where
        assert done.returncode == 141, (where, done.returncode, errors.read_text())
        assert errors.read_text() == "", where
        asyncio.run(code_stops(target.shell_address, "<string>"))
        asyncio.run(fresh_session_answers(target.shell_address))
    stack_command_answers(target)


@pytest.mark.timeout(120)
def test_fault_sigstop_then_kill(target) -> None:  # noqa: ANN001
    argv = dask_command(
        "worker", "shell", "f1", "--scheduler", target.cluster.scheduler_address, "-c", PRINT_LOOP
    )
    for attempt in range(3):
        where = f"SIGSTOP then kill, repetition {attempt + 1}"
        # Nobody reads its stdout: once the pipe is full it stops reading its session.
        client = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            first = client.stdout.readline()
            assert first == b"0\n", where
            os.kill(client.pid, signal.SIGSTOP)
            asyncio.run(fresh_session_answers(target.shell_address))  # a stopped client
            stack_command_answers(target)
            client.kill()
            client.wait(10)
            asyncio.run(code_stops(target.shell_address, "<string>"))
            asyncio.run(fresh_session_answers(target.shell_address))
        finally:
            if client.poll() is None:
                client.kill()
            client.stdout.close()
