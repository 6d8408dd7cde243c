"""``dask top`` as a user runs it: ``--once [--json]``, errors, and the dashboard in a
real terminal (tmux), with a shell opened from it and ``q`` to quit."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest

from dask_cli.testing import dask_command, probe_imports, run_dask

pytestmark = pytest.mark.timeout(240)


def test_help_imports_nothing_heavy():
    probe = probe_imports("top", "--help")
    assert "--once" in probe.output
    assert probe.heavy_modules == []
    assert "top" in probe_imports("--help").output


def test_once_json_against_a_real_cluster(top_cluster):
    done = run_dask("top", "--once", "--json", "--scheduler-file", top_cluster.scheduler_file)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    workers = {w["name"]: w for w in data["workers"]}
    assert set(workers) == {"w1", "w2", "kept"}
    assert workers["w1"]["status"] == "running" and workers["w1"]["memory"] > 0
    assert workers["kept"]["status"] == "kept-alive"
    assert "--lifetime" in workers["kept"]["kept_alive_reason"]
    assert data["address"] == top_cluster.scheduler_address
    assert data["totals"]["workers"] == 2 and data["workers_total"] == 3
    assert any("Register worker" in line["message"] for line in data["logs"])


def test_once_prints_tables(top_cluster):
    done = run_dask(
        "top", "--once", "--scheduler", top_cluster.scheduler_address, env={"COLUMNS": "160"}
    )
    assert done.returncode == 0, done.stderr
    # A pipe: plain columns, no titles (print_table), so the sections are told by their headers.
    for text in ("w1", "w2", "kept-alive", "2 workers (1 kept alive)", "kept alive because"):
        assert text in done.stdout
    assert re.search(r"^time +level +logger +message$", done.stdout, re.M)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--json"], 2, "--json goes with --once"),
        (["--once"], 1, "No scheduler address given"),
        (["--once", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1"], 1, "127.0.0.1:9"),
        (["--scheduler", "tcp://127.0.0.1:9"], 1, "dask top needs a terminal"),
    ],
    ids=["json-without-once", "no-address", "unreachable", "no-terminal"],
)
def test_bad_use_is_one_line_and_an_exit_code(args, code, message):
    done = run_dask("top", *args, env={"DASK_SCHEDULER_ADDRESS": ""})
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr


class Tmux:
    """A tmux server of our own (its own socket) running one command in an 80x24 window."""

    def __init__(self, command: str):
        assert shutil.which("tmux"), "tmux is needed (./dev installs it)"
        self.socket = f"dask-cli-top-{os.getpid()}-{time.monotonic_ns()}"
        self.run("new-session", "-d", "-s", "top", "-x", "80", "-y", "24", command)

    def run(self, *args: str) -> str:
        # os.environ, not the C-level environment a plain subprocess.run passes on:
        # readline (imported in this process by pdb and others) exports COLUMNS and
        # LINES there, and the dashboard, in tmux's environment, would keep that size
        # through every resize (shutil.get_terminal_size prefers them).
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30, env=env
        )
        return done.stdout

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-p", "-t", "top", *(["-e"] if escapes else []))

    def wait_for(self, pattern: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if re.search(pattern, screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on screen:\n{screen}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "top", *keys)

    def close(self) -> None:
        self.run("kill-server")


def test_dashboard_in_a_real_terminal(top_cluster, tmp_path):
    exit_file = tmp_path / "exit-status"
    argv = dask_command("top", "--scheduler-file", top_cluster.scheduler_file)
    command = f"NO_COLOR=1 {shlex.join(argv)}; echo $? > {exit_file}"
    tmux = Tmux(command)
    try:
        screen = tmux.wait_for(r"w1 .*running")
        assert re.search(r"w2 .*running", screen) and re.search(r"kept .*kept-alive", screen)
        screen = tmux.wait_for(r"q Quit", 30)  # the footer may come a frame after the table
        # NO_COLOR: nothing but greys (256-colour ramp 232-255), bold and reverse.
        colours = re.findall(r"\x1b\[[34]8;5;(\d+)m", tmux.screen(escapes=True))
        assert colours and all(232 <= int(c) <= 255 for c in colours), colours

        assert "name ▲" in screen  # by name: kept, w1, w2; the cursor on the first row
        tmux.keys("Down", "s")  # a shell on w1 in this terminal
        tmux.wait_for(r"dask-cli shell: worker 'w1'")
        tmux.keys("print(worker.name * 3)", "Enter")
        tmux.wait_for(r"w1w1w1")
        tmux.keys("exit()", "Enter")
        tmux.wait_for(r"proc/ready")  # the dashboard is back
        tmux.keys("q")
        deadline = time.monotonic() + 30
        while not exit_file.exists() or not exit_file.read_text().strip():
            assert time.monotonic() < deadline, f"dask top did not exit:\n{tmux.screen()}"
            time.sleep(0.1)
        assert exit_file.read_text().strip() == "0"
    finally:
        tmux.close()


def wait_exit_status(exit_file, tmux: Tmux, timeout: float = 30) -> str:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not exit_file.exists() or not exit_file.read_text().strip():
        assert time.monotonic() < deadline, f"dask top did not exit:\n{tmux.screen()}"
        time.sleep(0.1)
    return exit_file.read_text().strip()


def test_d_attaches_the_debugger_to_a_paused_task(top_cluster, tmp_path):
    """A task paused at breakpoint() on w1, in the Paused tab; ``d`` hands the terminal to
    ``dask worker debug`` on it; ``continue`` brings the dashboard back and the task
    completes. The terminal goes 80x24 → 120x40 → 80x24 on the way (footer each time)."""
    import asyncio
    import io

    from distributed import Client

    from dask_cli.debug.client import debugger
    from dask_cli.debug.client.settings import ClientSettings

    def held(readings: list[int]) -> int:  # nested: cloudpickle sends it by value
        checksum = sum(readings) * 7
        breakpoint()
        return checksum + 1

    settings = ClientSettings(scheduler=top_cluster.scheduler_address)

    def pauses() -> list:
        return [p for p in asyncio.run(debugger.paused_tasks(settings)) if p.key == "top-held"]

    exit_file = tmp_path / "exit-status"
    argv = dask_command("top", "--scheduler-file", top_cluster.scheduler_file)
    with Client(top_cluster.scheduler_address, timeout="20s") as client:
        w1 = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "w1")
        future = client.submit(held, [1, 2, 3], key="top-held", workers=[w1])
        tmux = Tmux(f"NO_COLOR=1 {shlex.join(argv)}; echo $? > {exit_file}")
        try:
            deadline = time.monotonic() + 60
            while not pauses():
                assert time.monotonic() < deadline, "top-held never paused"
                time.sleep(0.2)
            tmux.wait_for(r"w1 .*running")
            tmux.wait_for(r"q Quit .*d Debug", 30)
            tmux.keys("3")  # the Paused tab
            screen = tmux.wait_for(r"top-held +w1 ")
            assert "Paused (1)" in screen

            tmux.run("resize-window", "-t", "top", "-x", "120", "-y", "40")
            screen = tmux.wait_for(r"(?m)^.{100,}", 30)  # redrawn to the new width
            lines = screen.splitlines()
            assert len(lines) == 40 and re.search(r"top-held +w1 ", screen), screen
            assert re.match(r" q Quit .*d Debug", lines[-1]), screen  # the footer, at the bottom

            tmux.keys("d")
            tmux.wait_for(r"Attached to task 'top-held' on worker w1")
            tmux.wait_for(r"(?m)^\(Pdb\) *$")
            tmux.keys("p checksum", "Enter")
            tmux.wait_for(r"(?m)^42$")
            tmux.run("resize-window", "-t", "top", "-x", "80", "-y", "24")
            tmux.keys("p readings", "Enter")
            tmux.wait_for(r"(?m)^\[1, 2, 3\]$")
            assert not future.done() and pauses()[0].attached
            tmux.keys("continue", "Enter")

            assert future.result(timeout=30) == 43
            screen = tmux.wait_for(r"proc/ready", 30)  # the dashboard is back
            screen = tmux.wait_for(r"(?m)^ q Quit .*d Debug *$", 30)
            lines = screen.splitlines()
            assert len(lines) == 24 and max(len(line) for line in lines) <= 80, screen
            assert re.match(r" q Quit .*d Debug", lines[-1]), screen
            tmux.wait_for(r"Paused \(0\)", 30)
            tmux.keys("q")
            assert wait_exit_status(exit_file, tmux) == "0"
        finally:
            tmux.close()
            if not future.done():  # let the task go, for the other tests' sake
                with contextlib.suppress(Exception):
                    commands, out = io.StringIO("continue\n"), io.StringIO()
                    asyncio.run(debugger.attach(settings, "top-held", commands, out))
