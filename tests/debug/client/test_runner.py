"""Non-interactive runs as ``python`` has them: exit status, stdin, a closed stdout."""

from __future__ import annotations

import io

import pytest
from distributed import Scheduler, Worker

from dask_cli.debug.client.connection import ShellConnection
from dask_cli.debug.client.runner import CLOSED_STDOUT_EXIT, run_source
from dask_cli.debug.service.plugin import ShellWorkerPlugin

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def conn():
    async with Scheduler(host="127.0.0.1", dashboard_address=":0") as scheduler:
        async with Worker(scheduler.address, host="127.0.0.1", nthreads=1) as worker:
            await worker.plugin_add(ShellWorkerPlugin(), name=ShellWorkerPlugin.name)
            connection = await ShellConnection.open(worker.dask_cli_shell.address, None, 10)
            yield connection
            await connection.close()


async def run(conn, source: str, stdin: str | None = None) -> tuple[int, str, str]:  # noqa: ANN001
    out, err = io.StringIO(), io.StringIO()
    status = await run_source(
        conn, source, stdout=out, stderr=err, stdin=io.StringIO(stdin) if stdin else None
    )
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("source", "status", "stderr"),
    [
        ("import sys; sys.exit(3)", 3, ""),
        ("raise SystemExit('bye')", 1, "bye\n"),
        ("raise SystemExit", 0, ""),
        ("exit(0)", 0, ""),
        ("1/0", 1, "ZeroDivisionError"),
    ],
)
async def test_exit_status_as_python_has_it(conn, source, status, stderr) -> None:  # noqa: ANN001
    got, _, err = await run(conn, source)
    assert got == status
    assert stderr in err if stderr else err == ""


async def test_input_and_sys_stdin_read_our_stdin(conn) -> None:  # noqa: ANN001
    source = "import sys\nprint(input().upper())\nprint(repr(sys.stdin.read()))"
    status, out, _ = await run(conn, source, stdin="first\nsecond\nthird\n")
    assert status == 0
    assert out == "FIRST\n'second\\nthird\\n'\n"


async def test_no_stdin_is_end_of_file(conn) -> None:  # noqa: ANN001
    status, _, err = await run(conn, "input()")
    assert status == 1 and "EOFError" in err


class ClosedAfter(io.StringIO):
    """A stdout that breaks (as ``| head`` does) after ``lines`` lines."""

    def __init__(self, lines: int):
        super().__init__()
        self.left = lines

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= text.count("\n")
        return super().write(text)

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")


async def test_a_closed_stdout_stops_the_code_quietly(conn) -> None:  # noqa: ANN001
    out, err = ClosedAfter(2), io.StringIO()
    status = await run_source(conn, "for i in range(10**8): print(i)", stdout=out, stderr=err)
    assert status == CLOSED_STDOUT_EXIT
    assert err.getvalue() == ""
    after = await conn.eval("1+1")  # the code stopped; the session goes on
    assert after.value == "2"
