"""``dask worker shell NAME`` in a real pseudo-terminal, against a real worker.

Each test drives the ptpython REPL with pexpect: keystrokes in, the screen's text
out (ANSI escape sequences removed before matching). One scheduler and worker
serve the whole module; every session runs with a temporary HOME and XDG
directories, so no user configuration or history leaks in or out.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pexpect
import pytest

from dask_cli.testing import dask_command, process_cluster, run_dask

# CSI sequences (colours, cursor moves, modes), OSC titles, charset switches, CRs.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-B]|\x1b[=>]|\r")


class Terminal:
    """A ``dask`` process on a pty; ``expect`` matches the text on screen."""

    def __init__(self, args: list[str], env: dict[str, str]):
        argv = dask_command(*args)
        self.child = pexpect.spawn(
            argv[0], argv[1:], env=env, dimensions=(40, 150), encoding="utf-8", timeout=5
        )
        self.raw = ""
        self._consumed = 0  # matches start after the previous match

    def _read(self, wait: float) -> None:
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            pass

    def text(self) -> str:
        return _ANSI.sub("", self.raw)

    def expect(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears on screen after the last match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            match = regex.search(self.text(), self._consumed)
            if match:
                self._consumed = match.end()
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on screen within {timeout}s:\n{self.text()}")
            try:
                self._read(0.1)
            except pexpect.EOF:
                match = regex.search(self.text(), self._consumed)
                if match:
                    self._consumed = match.end()
                    return match
                raise AssertionError(f"process ended before {pattern!r}:\n{self.text()}") from None

    def wait_for_line_editor(self, timeout: float = 10) -> None:
        """Wait until a prompt_toolkit prompt is reading keys (it turns on bracketed
        paste when it starts): keys sent earlier would reach the terminal in cooked
        mode instead."""
        start = len(self.raw)
        deadline = time.monotonic() + timeout
        while "\x1b[?2004h" not in self.raw[start:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"no prompt within {timeout}s:\n{self.text()}")
            self._read(0.05)

    def forget(self) -> None:
        """Drop the screen text seen so far: matching re-reads the whole text, which a
        long output (a print loop) would make slower round after round."""
        self.raw = ""
        self._consumed = 0

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def enter(self, line: str) -> None:
        """Type ``line`` and press Enter (a pause lets prompt_toolkit see it as typing)."""
        self.child.send(line)
        time.sleep(0.05)
        self.child.send("\r")

    def wait_exit(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.child.isalive():
            if time.monotonic() > deadline:
                raise AssertionError(f"shell did not exit within {timeout}s:\n{self.text()}")
            try:
                self._read(0.1)
            except pexpect.EOF:
                break
        self.child.wait()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


PROMPT = r">>>"


@pytest.fixture(scope="module")
def shell_cluster(tmp_path_factory):
    """One scheduler and worker ``w1`` for every test of this module."""
    with process_cluster(tmp_path_factory.mktemp("repl-cluster"), workers=("w1",)) as cluster:
        yield cluster


def make_home(directory: Path) -> Path:
    """A fresh HOME with XDG directories: no user config, history written here."""
    for name in ("config", "data", "cache"):
        (directory / name).mkdir()
    return directory


@pytest.fixture
def home(tmp_path) -> Path:
    return make_home(tmp_path)


def shell_env(cluster, home: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DASK_", "PTPYTHON_", "XDG_", "PYTHONSTARTUP"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        TERM="xterm-256color",
        PROMPT_TOOLKIT_NO_CPR="1",
        DASK_SCHEDULER_ADDRESS=cluster.scheduler_address,
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def shell(shell_cluster, home):
    """Start ``dask worker shell NAME`` on a pty; closed (killed if need be) afterwards."""
    terminals: list[Terminal] = []

    def start(name: str = "w1") -> Terminal:
        terminal = Terminal(["worker", "shell", name], shell_env(shell_cluster, home))
        terminals.append(terminal)
        return terminal

    yield start
    for terminal in terminals:
        terminal.close()


@pytest.mark.timeout(90)
def test_banner_completion_multiline_history_and_ctrl_d(shell, home):
    # The user's ptpython config is honoured: this one switches to IPython prompts.
    config = home / "config" / "ptpython" / "config.py"
    config.parent.mkdir(parents=True)
    config.write_text("def configure(repl):\n    repl.prompt_style = 'ipython'\n")

    term = shell()
    term.expect(r"worker 'w1' at tcp://127\.0\.0\.1:\d+")
    term.expect(r"tasks\(\), logs\(\), stacks\(\), story\(key\)")
    term.expect(r"In \[1\]")

    # Tab completion is answered by the worker: attributes of its live `worker`.
    term.send("worker.addr")
    term.send("\t")
    term.expect(r"address")
    term.send("\x15")  # Ctrl-U: clear the line

    # Multi-line input: ptpython's validator waits for the blank line.
    term.enter("def f(x):")
    term.enter("return x * 1111")
    term.enter("")
    term.enter("")
    term.expect(r"In \[\d+\]")
    term.enter("f(2)")
    term.expect(r"2222")

    # Remote output streams back; remote tracebacks are shown.
    term.enter("print('from', 'the', 'worker')")
    term.expect(r"from the worker")
    term.enter("1/0")
    term.expect(r"ZeroDivisionError")

    term.send("\x04")  # Ctrl-D leaves
    assert term.wait_exit() == 0
    history = (home / "data" / "dask-cli" / "shell-history").read_text()
    assert "f(2)" in history


@pytest.mark.timeout(90)
def test_ctrl_c_interrupts_remote_code_and_exit_keeps_the_worker(shell, shell_cluster):
    term = shell()
    term.expect(r"worker 'w1'")
    term.expect(PROMPT)
    term.enter("import time; time.sleep(30)")
    time.sleep(0.5)  # let the code start on the worker
    term.send("\x03")
    term.expect(r"KeyboardInterrupt", timeout=8)
    term.expect(PROMPT, timeout=8)

    term.enter("1+1")
    term.expect(r"^2$")
    term.expect(PROMPT)

    term.enter("exit()")
    assert term.wait_exit() == 0

    # The worker is still there and still serves shells.
    env = {"DASK_SCHEDULER_ADDRESS": shell_cluster.scheduler_address}
    done = run_dask("worker", "shell", "w1", "-c", "print('alive', 40 + 2)", env=env)
    assert done.returncode == 0, done.stderr
    assert "alive 42" in done.stdout
    assert shell_cluster.workers["w1"].alive()


@pytest.mark.timeout(60)
def test_code_runs_in_the_worker_and_reads_input_here(shell):
    """The client's process (argv `... worker shell w1`) is not where code runs;
    what that code reads with input() comes from this terminal."""
    term = shell()
    term.expect(PROMPT)
    term.enter("import sys")
    term.expect(PROMPT)
    term.enter("'shell' in sys.argv, type(worker).__name__")
    term.expect(r"\(False, 'Worker'\)")
    term.expect(PROMPT)

    # input() on the worker reads a line here; Ctrl-D is end of file.
    term.enter("answer = input('na' 'me> ')")
    term.expect(r"name> ")
    term.wait_for_line_editor()
    term.enter("bob")
    term.expect(PROMPT)
    term.enter("answer.upper()")
    term.expect(r"'BOB'")
    term.enter("input('ag' 'ain> ')")
    term.expect(r"again> ")
    term.wait_for_line_editor()
    term.send("\x04")
    term.expect(r"EOFError")
    term.expect(PROMPT)
    term.send("\x04")
    assert term.wait_exit() == 0


@pytest.mark.timeout(90)
def test_a_worker_that_dies_ends_the_shell_with_one_line(shell, shell_cluster):
    doomed = shell_cluster.start_worker("doomed", "--no-nanny")
    term = shell("doomed")
    term.expect(r"worker 'doomed'")
    term.expect(PROMPT)
    doomed.stop(signal.SIGKILL)
    term.enter("1+1")
    term.expect(r"Error: Lost the connection to worker 'doomed'")
    assert term.wait_exit() == 1
    assert "Traceback" not in term.text()
