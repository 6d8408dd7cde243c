"""dask-cli against a real cluster in containers, broken on purpose.

One compose cluster serves the whole module; tests run in file order, from harmless
to destructive: reading state, interactive session, post-mortem of a failed task,
then the faults the cluster recovers from (paused container, lost network), and last
the one it does not (the scheduler killed).
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import pexpect
import pytest
from harness import (
    ENV,
    KEEPALIVE_IP,
    KEEPALIVE_SHELL,
    KEEPALIVE_WORKER,
    PLAIN_WORKER,
    REPO,
    SCHEDULER,
    Compose,
    wait_until,
)

pytestmark = pytest.mark.timeout(240)

DATA_KEY = "integration-data"
FAILED_KEY = "integration-fail"
# A prompt of ptpython (">>>") or of pdb ("(Pdb)").
PROMPT = r">>>|\(Pdb\)"

# Keep a result on the kept-alive worker after the submitting client left:
# publish_dataset holds a reference on the scheduler.
PERSIST_DATA = f"""
from distributed import Client, wait
c = Client({SCHEDULER!r}, timeout=10)
f = c.submit(lambda: {{"answer": 42}}, key={DATA_KEY!r}, workers=[{KEEPALIVE_WORKER!r}])
wait(f)
c.publish_dataset(integration_data=f)
print("stored on", c.who_has(f)[f.key])
"""

# A task that raises on the kept-alive worker, with a local worth inspecting.
FAIL_TASK = f"""
from distributed import Client, wait
def failing_task(x):
    secret_local = "postmortem-" + str(x * 6)
    raise ValueError("integration boom")
c = Client({SCHEDULER!r}, timeout=10)
f = c.submit(failing_task, 7, key={FAILED_KEY!r}, workers=[{KEEPALIVE_WORKER!r}])
wait(f)
print("task status:", f.status)
c.publish_dataset(integration_failed=f)
"""

COMPUTE_ON_KEEPALIVE = f"""
from distributed import Client
c = Client({SCHEDULER!r}, timeout=10)
print("sum:", c.submit(sum, [1, 2, 3], workers=[{KEEPALIVE_WORKER!r}], pure=False).result())
"""


def shell_on(compose: Compose, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``dask worker shell ARGS`` in the client container, no terminal."""
    return compose.dask("worker", "shell", *args, timeout=timeout)


def spawn_shell(compose: Compose, *args: str) -> pexpect.spawn:
    """An interactive ``dask worker shell`` in a real terminal, via docker-compose exec."""
    argv = compose.interactive_argv("client", "dask", "worker", "shell", *args)
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 160),
        cwd=str(REPO),
        env=ENV,
    )
    return child


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error output of a failed command, checked to be a message (an error line and
    perhaps a hint), not a traceback."""
    text = (result.stderr + result.stdout).strip()
    assert text, "failed without saying why"
    assert "Traceback" not in text, text
    assert len(text.splitlines()) <= 3, text
    return text


def test_worker_list_shows_both_workers_by_name(compose: Compose) -> None:
    result = compose.dask("worker", "list", "--scheduler", SCHEDULER)
    assert result.returncode == 0, result.stderr
    assert KEEPALIVE_WORKER in result.stdout
    assert PLAIN_WORKER in result.stdout


def test_dashboard_published_on_loopback_only(compose: Compose) -> None:
    published = compose.run("port", "scheduler", "8787").stdout.strip()
    host, _, port = published.rpartition(":")
    assert host == "127.0.0.1", published
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    with direct.open(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        assert response.read().decode() == "ok"


def test_shell_reads_data_the_worker_holds(compose: Compose) -> None:
    stored = compose.python(PERSIST_DATA)
    assert stored.returncode == 0, stored.stderr
    assert KEEPALIVE_IP in stored.stdout, stored.stdout

    result = shell_on(compose, KEEPALIVE_WORKER, "-c", f"print(worker.data[{DATA_KEY!r}])")
    assert result.returncode == 0, result.stderr
    assert "{'answer': 42}" in result.stdout
    by_name = shell_on(compose, KEEPALIVE_WORKER, "-c", "print(worker.name)")
    assert by_name.stdout.strip().splitlines()[-1] == KEEPALIVE_WORKER


def test_shell_by_hostname_address_while_scheduler_is_up(compose: Compose) -> None:
    # The address a user reads in docker-compose.yml, not the IP the worker advertises.
    result = shell_on(compose, KEEPALIVE_SHELL, "-c", "print(worker.name)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == KEEPALIVE_WORKER


def test_shell_exit_status_follows_remote_error(compose: Compose) -> None:
    result = shell_on(compose, PLAIN_WORKER, "-c", "raise RuntimeError('remote failure')")
    assert result.returncode == 1
    assert "remote failure" in result.stdout + result.stderr


def test_interactive_session_prompt_completion_ctrl_c_exit(compose: Compose) -> None:
    child = spawn_shell(compose, KEEPALIVE_WORKER)
    try:
        child.expect(PROMPT)
        # Output of the worker: a marker that the typed line itself does not contain.
        child.send("print('inter' + 'active-' + str(6 * 7))\r")
        child.expect("interactive-42")
        child.expect(PROMPT)

        # Remote completion: `worker.addr<Tab>` offers `address_safe`, an attribute
        # of the live Worker object in the container.
        child.send("worker.addr")
        child.send("\t")
        child.expect("address_safe", timeout=20)
        child.send("\x1b")  # close the completion menu
        child.send("\x15")  # clear the line
        child.send("\r")
        child.expect(PROMPT)

        # Ctrl-C interrupts remote code and keeps the session.
        child.send("import time; time.sleep(60)\r")
        time.sleep(1)
        child.send("\x03")
        child.expect("KeyboardInterrupt", timeout=15)
        child.expect(PROMPT)
        child.send("print('still-' + 'here')\r")
        child.expect("still-here")
        child.expect(PROMPT)

        child.send("exit()\r")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before
    # exit() ends the session, never the worker.
    assert compose.running(KEEPALIVE_WORKER)


def test_pm_prints_local_of_failed_frame(compose: Compose) -> None:
    failed = compose.python(FAIL_TASK)
    assert "task status: error" in failed.stdout, failed.stdout + failed.stderr

    child = spawn_shell(compose, KEEPALIVE_WORKER)
    try:
        child.expect(PROMPT)
        child.send(f"pm({FAILED_KEY!r})\r")
        child.expect(r"\(Pdb\)", timeout=30)
        child.send("p secret_local\r")
        child.expect("postmortem-42")
        child.expect(r"\(Pdb\)")
        child.send("q\r")
        child.expect(">>>", timeout=30)
        child.send("exit()\r")
        child.expect(pexpect.EOF, timeout=30)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    # The worker keeps computing after a post-mortem.
    result = compose.python(COMPUTE_ON_KEEPALIVE)
    assert "sum: 6" in result.stdout, result.stdout + result.stderr


def test_paused_worker_times_out_and_recovers(compose: Compose) -> None:
    timeout = 5
    child = spawn_shell(compose, KEEPALIVE_WORKER, "--timeout", str(timeout))
    paused = False
    try:
        child.expect(PROMPT)
        child.send("print('before-' + 'pause')\r")
        child.expect("before-pause")
        child.expect(PROMPT)

        compose.run("pause", KEEPALIVE_WORKER)
        paused = True
        started = time.monotonic()
        child.send("print('after-' + 'pause')\r")
        # The client gives up on its own: a timeout message, then it exits 1.
        child.expect(re.compile("time[d ]*out", re.IGNORECASE), timeout=timeout + 25)
        child.expect(pexpect.EOF, timeout=timeout + 10)
        took = time.monotonic() - started
    finally:
        child.close(force=True)
        if paused:
            compose.run("unpause", KEEPALIVE_WORKER)
    assert child.exitstatus == 1, child.before
    # Within its --timeout, plus slack for docker exec on a loaded 2-core machine.
    assert took < timeout + 20, took

    result = shell_on(compose, KEEPALIVE_WORKER, "-c", "print('after-' + 'unpause')")
    assert result.returncode == 0, result.stderr
    assert "after-unpause" in result.stdout


def test_network_disconnect_gives_clear_error_then_recovers(compose: Compose) -> None:
    network, aliases = compose.disconnect(KEEPALIVE_WORKER)
    try:
        cut_off = shell_on(
            compose, KEEPALIVE_WORKER, "--timeout", "5", "-c", "print(1)", timeout=60
        )
    finally:
        compose.reconnect(KEEPALIVE_WORKER, network, aliases, KEEPALIVE_IP)
    assert cut_off.returncode != 0
    one_clear_line(cut_off)

    def shell_works() -> bool:
        result = shell_on(compose, KEEPALIVE_WORKER, "--timeout", "5", "-c", "print(worker.name)")
        return result.returncode == 0 and KEEPALIVE_WORKER in result.stdout

    wait_until(shell_works, timeout=60, interval=1, what="the shell after reconnecting")


def test_scheduler_killed_keepalive_worker_stays_and_serves_shell(compose: Compose) -> None:
    compose.run("kill", "scheduler")
    wait_until(
        lambda: not compose.running(PLAIN_WORKER),
        timeout=90,
        what="the plain worker to exit after losing the scheduler",
    )
    # The kept-alive worker is still up well after the plain one went away ...
    time.sleep(3)
    assert compose.running(KEEPALIVE_WORKER)
    # One log line tells how to get in.
    logs = compose.run("logs", "--no-color", KEEPALIVE_WORKER).stdout
    assert "dask worker shell" in logs, logs[-3000:]
    # ... and its shell, reached by address (no scheduler to resolve names), still
    # reads the data it held.
    result = shell_on(
        compose, KEEPALIVE_SHELL, "-c", f"print(worker.data[{DATA_KEY!r}])", timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "{'answer': 42}" in result.stdout
