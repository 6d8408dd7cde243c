"""Breakpoints in tasks: ``breakpoint()`` pauses one task's thread; ``dask worker debug``
lists and attaches.

One cluster of real processes for the module (``b1`` and ``b2``, two threads each).
The tasks live in ``bp_tasks.py`` in the workers' directory (``python -m`` puts it on
their path, and the test process imports it from there), so they are pickled by
reference and pdb's ``list`` has their source; one test sends by-value code instead.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from dask_cli.errors import DaskCliError
from dask_cli.testing import ProcessCluster, dask_command, dask_terminal, run_dask

TASKS = textwrap.dedent(
    """
    def summarise(readings):
        total = sum(readings)
        breakpoint()
        return total * 2


    def quick(i):
        return i + 1


    def slow(seconds):
        import time

        breakpoint()
        time.sleep(seconds)
        return seconds
    """
)


@pytest.fixture(scope="module")
def paused_cluster(tmp_path_factory):
    from distributed import Client

    directory = tmp_path_factory.mktemp("breakpoints")
    (directory / "bp_tasks.py").write_text(TASKS)
    sys.path.insert(0, str(directory))
    cluster = ProcessCluster(Path(directory))
    try:
        cluster.start_scheduler()
        for name in ("b1", "b2"):
            cluster.start_worker(name, "--nthreads", "2", wait=False)
        for name in ("b1", "b2"):
            cluster.workers[name].wait_for("Registered to:", 60)
        with Client(cluster.scheduler_address, timeout="20s") as client:
            yield cluster, client
    except BaseException:
        sys.stderr.write(cluster.dump_logs())
        raise
    finally:
        cluster.close()
        sys.path.remove(str(directory))


def address_of(client, name: str) -> str:  # noqa: ANN001
    return next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == name)


def paused(cluster) -> list:  # noqa: ANN001
    from dask_cli.debug.client.debugger import paused_tasks
    from dask_cli.debug.client.settings import ClientSettings

    return asyncio.run(paused_tasks(ClientSettings(scheduler=cluster.scheduler_address)))


def wait_paused(cluster, key: str, timeout: float = 30):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in paused(cluster) if p.key == key]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"{key} never paused:\n{cluster.dump_logs()[-3000:]}")


def pause_on(client, name: str, key: str, readings=(1, 2, 3)):  # noqa: ANN001, ANN201
    import bp_tasks

    return client.submit(
        bp_tasks.summarise, list(readings), key=key, workers=[address_of(client, name)]
    )


def attach_here(cluster, query: str, commands: str) -> tuple[int, str]:  # noqa: ANN001
    """``dask worker debug QUERY`` with ``commands`` on stdin, in this process (the same
    code as the command, without a process start: the CLI itself is tested once)."""
    from dask_cli.debug.client.debugger import attach
    from dask_cli.debug.client.settings import ClientSettings

    out = io.StringIO()
    settings = ClientSettings(scheduler=cluster.scheduler_address)
    status = asyncio.run(attach(settings, query, io.StringIO(commands), out))
    return status, out.getvalue()


def debug(cluster, *args: str, input: str | None = None) -> subprocess.CompletedProcess:  # noqa: ANN001
    return run_dask("worker", "debug", *args, "--scheduler", cluster.scheduler_address, input=input)


@pytest.mark.timeout(180)
def test_pause_list_attach_continue(paused_cluster) -> None:  # noqa: ANN001
    import bp_tasks

    cluster, client = paused_cluster
    future = pause_on(client, "b1", "summarise-main", readings=[4, 5, 6])
    wait_paused(cluster, "summarise-main")
    log = cluster.workers["b1"].output()
    assert "Task 'summarise-main' paused at breakpoint() in " in log
    assert "bp_tasks.py:4 (summarise) on worker b1" in log
    assert (
        f"Attach with: dask worker debug summarise-main --scheduler {cluster.scheduler_address}"
        in log
    )
    events = client.get_events("dask-cli-breakpoint")
    assert any(
        e["key"] == "summarise-main" and "dask worker debug" in e["command"] for _, e in events
    )

    # The worker goes on: its other tasks (more than its threads) finish, it stays listed.
    b1 = address_of(client, "b1")
    others = client.map(bp_tasks.quick, range(20), workers=[b1], pure=False)
    assert client.gather(others) == list(range(1, 21))
    assert b1 in client.scheduler_info()["workers"]
    assert tuple(client.processing(workers=[b1])[b1]) == ("summarise-main",)

    listed = debug(cluster)
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()  # a pipe: plain columns, one line per task
    assert header.split()[:3] == ["key", "worker", "where"]
    assert [row.split()[:2] for row in rows] == [["summarise-main", "b1"]]
    as_json = debug(cluster, "--json")
    [entry] = [e for e in json.loads(as_json.stdout) if e["key"] == "summarise-main"]
    assert entry["worker"] == "b1" and entry["function"] == "summarise"
    assert entry["file"].endswith("bp_tasks.py") and entry["line"] == 4
    assert entry["attached"] is None

    attached = debug(cluster, "summarise-m", input="p total\nwhere\nlist\np readings\ncontinue\n")
    assert attached.returncode == 0, attached.stdout + attached.stderr
    out = attached.stdout
    assert "Attached to task 'summarise-main' on worker b1" in out
    assert "(Pdb) p total\n15\n" in out
    assert "summarise()" in out  # where
    assert "->\t    return total * 2" in out  # list: the source, at the next line
    assert "[4, 5, 6]" in out
    assert "resumed (continue)" in out
    assert future.result(timeout=30) == 30
    assert not [p for p in paused(cluster) if p.key == "summarise-main"]


class Attached:
    """``dask worker debug KEY`` with pdb commands written to its stdin as the test goes."""

    def __init__(self, cluster, key: str):  # noqa: ANN001
        import threading

        self.proc = subprocess.Popen(
            dask_command("worker", "debug", key, "--scheduler", cluster.scheduler_address),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def text(self) -> str:
        return "".join(self.output)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if (
                time.monotonic() > deadline
                or self.proc.poll() is not None
                and not (self._reader.is_alive())
            ):
                raise AssertionError(f"no {text!r} in:\n{self.text()}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.mark.timeout(180)
def test_two_pauses_listed_separately_and_one_debugger_each(paused_cluster) -> None:  # noqa: ANN001
    cluster, client = paused_cluster
    first = pause_on(client, "b1", "summarise-one", readings=[1])
    second = pause_on(client, "b2", "summarise-two", readings=[2])
    wait_paused(cluster, "summarise-one")
    wait_paused(cluster, "summarise-two")
    listed = {p.key: p.worker for p in paused(cluster)}
    assert listed["summarise-one"] == "b1" and listed["summarise-two"] == "b2"

    session = Attached(cluster, "summarise-one")
    try:
        session.send("p total")
        session.wait_for("(Pdb) p total\n1\n")
        assert [p.attached for p in paused(cluster) if p.key == "summarise-one"] != [None]
        with pytest.raises(DaskCliError, match="summarise-one' is already being debugged by"):
            attach_here(cluster, "summarise-one", "p total\n")
        session.send("continue")
        assert session.proc.wait(20) == 0, session.text()
    finally:
        session.close()
    assert first.result(timeout=20) == 2
    # By worker name: b2 has exactly one paused task.
    status, out = attach_here(cluster, "b2", "p readings\nquit\n")
    assert status == 0
    assert "(Pdb) p readings\n[2]\n" in out and "the task resumes" in out
    assert second.result(timeout=20) == 4


@pytest.mark.timeout(180)
def test_a_debugger_that_goes_away_lets_the_task_go_on(paused_cluster) -> None:  # noqa: ANN001
    cluster, client = paused_cluster
    future = pause_on(client, "b1", "summarise-gone")
    wait_paused(cluster, "summarise-gone")
    session = Attached(cluster, "summarise-gone")
    try:
        session.send("next")
        session.wait_for("(Pdb) next\n")
        session.proc.send_signal(signal.SIGKILL)
    finally:
        session.close()
    assert future.result(timeout=20) == 12
    cluster.workers["b1"].wait_for(r"Task 'summarise-gone' resumed from its breakpoint", 10)


@pytest.mark.timeout(180)
def test_kill_stops_the_task_and_the_worker_goes_on(paused_cluster) -> None:  # noqa: ANN001
    import bp_tasks

    cluster, client = paused_cluster
    future = pause_on(client, "b2", "summarise-killed")
    wait_paused(cluster, "summarise-killed")
    status, out = attach_here(cluster, "summarise-killed", "kill\n")
    assert status == 0 and "was stopped" in out
    with pytest.raises(Exception, match="stopped from the debugger"):
        future.result(timeout=20)
    b2 = address_of(client, "b2")
    assert client.submit(bp_tasks.quick, 1, workers=[b2], pure=False).result(timeout=20) == 2


@pytest.mark.timeout(180)
def test_timeout_with_nobody_attached_and_zero_skips(paused_cluster) -> None:  # noqa: ANN001
    import bp_tasks

    cluster, client = paused_cluster
    b2 = address_of(client, "b2")

    def set_timeout(value: str | None) -> None:
        import dask

        dask.config.set({"cli.debug.breakpoint-timeout": value})

    try:
        client.run(set_timeout, "1s", workers=[b2])
        start = time.monotonic()
        waited = client.submit(bp_tasks.summarise, [5], key="summarise-waits", workers=[b2])
        assert waited.result(timeout=30) == 10
        assert time.monotonic() - start >= 1.0
        cluster.workers["b2"].wait_for(
            r"Task 'summarise-waits' continues from its breakpoint: nobody attached within 1 s",
            10,
        )
        client.run(set_timeout, "0", workers=[b2])
        skipped = client.submit(bp_tasks.summarise, [6], key="summarise-skips", workers=[b2])
        assert skipped.result(timeout=10) == 12
        assert "'summarise-skips' paused" not in cluster.workers["b2"].output()
    finally:
        client.run(set_timeout, "5 minutes", workers=[b2])


@pytest.mark.timeout(180)
def test_by_value_code_says_it_has_no_source(paused_cluster) -> None:  # noqa: ANN001
    cluster, client = paused_cluster

    def by_value(x: int) -> int:  # nested: cloudpickle sends it by value
        doubled = x * 2
        breakpoint()
        return doubled

    future = client.submit(by_value, 21, key="by-value", workers=[address_of(client, "b1")])
    wait_paused(cluster, "by-value")
    status, out = attach_here(cluster, "by-value", "list\np doubled\ncontinue\n")
    assert status == 0
    assert "*** No source for " in out and "pickled by value" in out
    assert "(Pdb) p doubled\n42\n" in out
    assert future.result(timeout=20) == 42


@pytest.mark.timeout(180)
def test_in_a_terminal(paused_cluster) -> None:  # noqa: ANN001
    cluster, client = paused_cluster
    future = pause_on(client, "b1", "summarise-tty", readings=[7, 8])
    wait_paused(cluster, "summarise-tty")
    args = ("worker", "debug", "summarise-tty", "--scheduler", cluster.scheduler_address)
    with dask_terminal(*args, timeout=60, dimensions=(40, 200)) as child:
        child.expect(r"\(Pdb\)")
        child.sendline("p total")
        child.expect("15")
        child.expect(r"\(Pdb\)")
        child.send("p readi")
        child.send("\t")  # completed by the worker, from the paused frame
        child.expect("ngs")  # the rest of "readings", drawn after what was typed
        child.send("\r")
        child.expect(r"\[7, 8\]")
        child.expect(r"\(Pdb\)")
        child.send("\x03")  # Ctrl-C at the prompt: the session (and the task) go on
        child.expect(r"\(Pdb\)")
        child.sendline("continue")
        child.expect("resumed")
    assert child.exitstatus == 0
    assert future.result(timeout=20) == 30


@pytest.mark.timeout(180)
def test_a_key_that_is_not_paused(paused_cluster) -> None:  # noqa: ANN001
    cluster, _ = paused_cluster
    done = debug(cluster, "no-such-task")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "Traceback" not in done.stderr
    assert "paused" in done.stderr.splitlines()[0]


@pytest.mark.timeout(180)
def test_a_cluster_without_the_toolkit() -> None:
    """distributed's own scheduler and worker (in this process): one line, exit 1."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=":0"
    ) as plain:
        done = run_dask("worker", "debug", "some-key", "--scheduler", plain.scheduler_address)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stderr.startswith("Error: No worker in this cluster runs the dask-cli")
        assert "Traceback" not in done.stderr
        with pytest.raises(DaskCliError, match="No worker in this cluster runs"):
            paused(SimpleNamespace(scheduler_address=plain.scheduler_address))


@pytest.mark.timeout(180)
def test_ctrl_c_while_the_task_runs_detaches(paused_cluster) -> None:  # noqa: ANN001
    import bp_tasks

    cluster, client = paused_cluster
    future = client.submit(bp_tasks.slow, 3, key="slow-1", workers=[address_of(client, "b2")])
    wait_paused(cluster, "slow-1")
    session = Attached(cluster, "slow-1")
    try:
        session.send("next")  # the task sleeps 3 s under pdb
        session.wait_for("(Pdb) next\n")
        time.sleep(0.5)
        session.proc.send_signal(signal.SIGINT)
        assert session.proc.wait(20) == 130, session.text()
        assert "Detaching (Ctrl-C): the task goes on" in session.text()
    finally:
        session.close()
    assert future.result(timeout=20) == 3


@pytest.mark.timeout(180)
def test_paused_and_debug_in_the_shell(paused_cluster) -> None:  # noqa: ANN001
    cluster, client = paused_cluster
    future = pause_on(client, "b2", "summarise-shell", readings=[10])
    wait_paused(cluster, "summarise-shell")
    done = run_dask(
        "worker",
        "shell",
        "b2",
        "--scheduler",
        cluster.scheduler_address,
        "-c",
        "print(paused())\ndebug('summarise-shell')",  # no input: pdb reads end of input
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "summarise-shell" in done.stdout and "(1 rows)" in done.stdout
    assert "Attached to task 'summarise-shell'" in done.stdout
    assert "resumed (end of input)" in done.stdout
    assert future.result(timeout=20) == 20


def spawn_debug(cluster, key: str):  # noqa: ANN001, ANN201
    """``dask worker debug KEY`` in a pseudo-terminal (pexpect): prompt_toolkit's prompt.
    No cursor position requests: pexpect's terminal would never answer them."""
    import os

    import pexpect

    argv = dask_command("worker", "debug", key, "--scheduler", cluster.scheduler_address)
    return pexpect.spawn(
        argv[0],
        argv[1:],
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
        env={**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1"},
    )


@pytest.mark.timeout(180)
def test_ctrl_c_in_a_terminal_is_pdbs(paused_cluster) -> None:  # noqa: ANN001
    """Ctrl-C at the prompt discards the line and asks again (pdb's --KeyboardInterrupt--),
    also when it comes as a signal; during a command's output it says so and the
    prompt follows: never detached, the task stays paused until continue."""
    cluster, client = paused_cluster
    future = pause_on(client, "b2", "summarise-ctrl-c", readings=[3, 4])
    wait_paused(cluster, "summarise-ctrl-c")
    child = spawn_debug(cluster, "summarise-ctrl-c")
    try:
        child.expect(r"\(Pdb\)")
        for _ in range(3):
            child.send("p readi")  # a line being typed: Ctrl-C discards it
            child.send("\x03")
            child.expect("--KeyboardInterrupt--")
            child.expect(r"\(Pdb\)")
        child.kill(signal.SIGINT)  # the signal, not the key: the same
        child.expect("--KeyboardInterrupt--")
        child.expect(r"\(Pdb\)")
        child.sendline("!for i in range(30): print(f'line{i}'); __import__('time').sleep(0.1)")
        child.expect("line3\r")
        child.send("\x03")  # while the command's output is printing
        child.expect(r"--KeyboardInterrupt-- \(pdb finishes the command on the worker\)")
        child.send("\x03")
        child.expect("line29\r")
        child.expect(r"\(Pdb\)")
        [entry] = [p for p in paused(cluster) if p.key == "summarise-ctrl-c"]
        assert entry.attached  # still attached, still paused
        assert not future.done()
        child.sendline("p total")
        child.expect(r"(?<![0-9])7\r\n")
        child.expect(r"\(Pdb\)")
        child.sendline("continue")
        child.expect(r"resumed \(continue\)")
        child.expect(pexpect_eof())
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    assert "Detaching" not in (child.before or "")
    assert future.result(timeout=20) == 14


def pexpect_eof():  # noqa: ANN201
    import pexpect

    return pexpect.EOF


@pytest.mark.timeout(180)
def test_ctrl_c_in_a_terminal_while_the_task_runs_detaches(paused_cluster) -> None:  # noqa: ANN001
    """After prompts (prompt_toolkit's own SIGINT handling must not remove the session's),
    Ctrl-C while pdb runs the task under ``next`` detaches; the task finishes."""
    import bp_tasks

    cluster, client = paused_cluster
    future = client.submit(bp_tasks.slow, 3, key="slow-tty", workers=[address_of(client, "b1")])
    wait_paused(cluster, "slow-tty")
    child = spawn_debug(cluster, "slow-tty")
    try:
        child.expect(r"\(Pdb\)")
        child.sendline("p seconds")
        child.expect(r"(?<![0-9])3\r\n")
        child.expect(r"\(Pdb\)")
        child.sendline("next")  # time.sleep(3) under pdb
        time.sleep(1)
        child.send("\x03")  # the terminal is cooked now: SIGINT
        child.expect("Detaching \\(Ctrl-C\\): the task goes on")
        child.expect(pexpect_eof())
    finally:
        child.close(force=True)
    assert child.exitstatus == 130
    assert future.result(timeout=20) == 3


@pytest.mark.timeout(180)
def test_ctrl_c_while_connecting_leaves_the_task_paused(paused_cluster) -> None:  # noqa: ANN001
    """The worker is stopped (SIGSTOP): listing works (the scheduler has the pause), the
    connection to the worker hangs; Ctrl-C then is one line and exit 130, and after
    the worker goes on the task is still paused, free for the next debugger."""
    import os

    cluster, client = paused_cluster
    future = pause_on(client, "b1", "summarise-connecting", readings=[5])
    wait_paused(cluster, "summarise-connecting")
    worker = cluster.workers["b1"]
    port = entry_port(cluster, "summarise-connecting")
    child = None
    os.killpg(worker.pid, signal.SIGSTOP)
    try:
        child = spawn_debug(cluster, "summarise-connecting")
        wait_connected(child.pid, port)
        time.sleep(0.5)  # the handshake the stopped worker never answers
        child.send("\x03")
        child.expect(pexpect_eof(), timeout=20)
        child.close()
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\^C", "", child.before)  # colour, the echo
        lines = [line for line in shown.splitlines() if line.strip()]
        assert lines == ["Interrupted before attaching: the task stays paused"], lines
        assert child.exitstatus == 130
    finally:
        os.killpg(worker.pid, signal.SIGCONT)
        if child is not None:
            child.close(force=True)
    entry = wait_paused(cluster, "summarise-connecting")
    assert entry.attached is None
    status, out = attach_here(cluster, "summarise-connecting", "p total\ncontinue\n")
    assert status == 0 and "(Pdb) p total\n5\n" in out
    assert future.result(timeout=20) == 10


def entry_port(cluster, key: str) -> int:  # noqa: ANN001
    """The port of the shell service of the worker where ``key`` is paused."""
    [entry] = [p for p in paused(cluster) if p.key == key]
    return int(entry.shell_address.rsplit(":", 1)[1])


def wait_connected(pid: int, port: int, timeout: float = 60) -> None:
    """Until process ``pid`` has a TCP connection to ``port`` (it found the pause and
    is connecting to the worker)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.raddr and c.raddr.port == port for c in psutil.Process(pid).net_connections()):
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} never connected to port {port}")


def test_what_ctrl_c_does_follows_the_last_command() -> None:
    """Ctrl-C detaches only while pdb runs the task: after next/step/continue..., and an
    empty line, which pdb takes as the last command again."""
    from dask_cli.debug.client.debugger import SessionState

    lines = iter(["p total", "", "next", "", "where", "until 9", None])

    async def prompt(text: str) -> str | None:
        return next(lines)

    async def phases() -> list[str]:
        state = SessionState(prompt)
        seen = [state.phase]
        for _ in range(7):
            await state.ask("(Pdb) ")
            seen.append(state.phase)
        return seen

    assert asyncio.run(phases()) == [
        "attaching",
        "command",
        "command",
        "running",
        "running",
        "command",
        "running",
        "running",  # end of input: the task resumes
    ]
