"""Post-mortem on failed tasks: ``failed()`` and ``pm(key)`` on the live frames.

One real cluster for the module (a ``--keepalive`` worker, which records failures),
broken by ``debug/task_raises.py``; the registry bound is checked in-process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from dask_cli.testing import process_cluster, run_dask

DEBUG = Path(__file__).resolve().parents[3] / "debug"
# debug/task_raises.py run as a script: cloudpickle sends its functions by value.
BY_VALUE_KEY = "summarise-batch-7"
# The same functions imported as the module ``task_raises`` (debug/ is on the workers'
# PYTHONPATH): sent by reference, so the worker has their source.
FAILING_KEY = "sourced-summarise-batch"
READINGS = "[-1.0, -3.5, -2.25]"


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A cluster whose worker ``pm`` (--keepalive) ran debug/task_raises.py (by value)
    and the same failure from an importable module (by reference)."""
    from distributed import Client, wait

    directory = tmp_path_factory.mktemp("postmortem")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(DEBUG), *sys.path]))
        patch.syspath_prepend(str(DEBUG))
        import task_raises

        with process_cluster(directory, workers=("pm",), worker_args=("--keepalive",)) as cluster:
            with Client(cluster.scheduler_address, timeout="20s") as client:
                batch = client.submit(task_raises.load_batch, 7)
                summary = client.submit(task_raises.summarise_batch, batch, key=FAILING_KEY)
                wait(summary, timeout=30)
                assert summary.status == "error"
            done = subprocess.run(
                [
                    sys.executable,
                    str(DEBUG / "task_raises.py"),
                    "--scheduler",
                    cluster.scheduler_address,
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            yield cluster


def shell(cluster, code: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    return run_dask("worker", "shell", "pm", "--scheduler", cluster.scheduler_address, "-c", code)


@pytest.mark.timeout(60)
def test_failed_lists_the_failure(broken) -> None:  # noqa: ANN001
    done = shell(broken, "print(failed())")
    assert done.returncode == 0, done.stderr
    assert FAILING_KEY in done.stdout and BY_VALUE_KEY in done.stdout
    assert "ZeroDivisionError: division by zero" in done.stdout


@pytest.mark.timeout(60)
def test_pm_walks_the_live_frames_with_scripted_commands(broken) -> None:  # noqa: ANN001
    done = shell(
        broken,
        f"pm({FAILING_KEY!r}, commands=['p readings', 'p valid', 'where', 'up', 'down', "
        "'list', 'q'])\nprint('back in the shell')",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert READINGS in out
    assert "\n[]\n" in out  # valid: no reading passed the threshold
    assert "summarise_batch()" in out  # where: the failing frame
    assert "sum(valid) / len(valid)" in out  # list: its source
    assert out.rstrip().endswith("back in the shell")


@pytest.mark.timeout(60)
def test_pm_says_why_by_value_code_has_no_source(broken) -> None:  # noqa: ANN001
    """A function from a script reaches the worker by value: no file to list, but its
    name, line and locals are there."""
    line = next(
        n
        for n, text in enumerate((DEBUG / "task_raises.py").read_text().splitlines(), 1)
        if "sum(valid) / len(valid)" in text
    )
    done = shell(broken, f"pm({BY_VALUE_KEY!r}, commands=['list', 'p readings', 'where', 'q'])")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert f"No source for summarise_batch (line {line}):" in out
    assert "sent by value" in out or "not on this machine" in out
    shown = out.split("Its locals: ", 1)[1].split(" (p NAME", 1)[0]
    assert sorted(shown.split(", ")) == ["batch", "readings", "threshold", "valid"], out
    assert READINGS in out
    assert f"({line})summarise_batch()" in out  # where: the line and the function


@pytest.mark.timeout(60)
def test_pm_reads_pdb_commands_through_the_session(broken) -> None:  # noqa: ANN001
    """pdb's input() goes to the client as protocol ``input`` messages."""
    from dask_cli.debug.client.connection import ShellConnection
    from dask_cli.debug.client.resolve import resolve_worker
    from dask_cli.debug.client.settings import ClientSettings

    answers = iter(["p readings", "p threshold", "q"])
    prompts: list[str] = []
    output: list[str] = []

    async def on_input(prompt: str) -> str | None:
        prompts.append(prompt)
        return next(answers, None)

    async def main() -> str:
        settings = ClientSettings(scheduler=broken.scheduler_address)
        record = await resolve_worker(settings, "pm")
        conn = await ShellConnection.open(record.shell_address, timeout=10)
        try:
            result = await conn.eval(
                "pm()", on_output=lambda _s, text: output.append(text), on_input=on_input
            )
            assert result.status == "ok", result.traceback
            after = await conn.eval("1 + 1")
            return after.value
        finally:
            await conn.close()

    assert asyncio.run(main()) == "2"
    assert len(prompts) == 3  # one line asked for each command, "q" included
    text = "".join(output) + "".join(prompts)
    assert "(Pdb)" in text
    assert READINGS in text and "0.0" in text


@pytest.mark.timeout(60)
def test_pm_in_a_terminal(broken) -> None:  # noqa: ANN001
    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "dask_cli", "worker", "shell", "pm", "--scheduler", broken.scheduler_address],
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 200),
    )
    try:
        child.expect(">>>")
        child.sendline(f"pm({BY_VALUE_KEY!r})")
        child.expect(r"\(Pdb\)")
        child.sendline("p readings")
        child.expect(r"-3\.5")
        child.expect(r"\(Pdb\)")
        child.sendline("q")
        child.sendline("print(6 * 7)")
        child.expect("42")
        child.sendline("exit()")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


@pytest.mark.timeout(60)
def test_a_later_task_still_runs(broken) -> None:  # noqa: ANN001
    from distributed import Client

    with Client(broken.scheduler_address, timeout="20s") as client:
        assert client.submit(lambda x: x + 1, 41, pure=False).result(timeout=30) == 42
    listed = run_dask("worker", "list", "--json", "--scheduler", broken.scheduler_address)
    assert '"running"' in listed.stdout


class Payload:
    """A local of each failing task, to see whether its frame was freed."""


def fails(i: int) -> None:
    payload = Payload()
    _refs.append(weakref.ref(payload))
    raise ValueError(f"failure {i}")


_refs: list[weakref.ref] = []


@pytest.mark.timeout(90)
def test_registry_stays_within_its_bound() -> None:
    """1,000 failing tasks: the last 100 keep their frames, older ones are freed."""
    import dask
    from distributed import Client, Scheduler, Worker

    from dask_cli import config
    from dask_cli.debug.service import postmortem

    config.register_defaults()
    # Each failure logs a "Compute Failed" traceback: 1,000 of them only cost time here.
    quiet = logging.getLogger("distributed.worker")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)

    async def main() -> tuple[int, int, list]:
        with dask.config.set({"cli.postmortem.always": True, "cli.postmortem.max-failures": 100}):
            async with Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as s:
                async with Worker(s.address, host="127.0.0.1", nthreads=2) as w:
                    postmortem.install(w)
                    async with Client(s.address, asynchronous=True) as c:
                        futures = c.map(fails, range(1000), pure=False)
                        await c.gather(futures, errors="skip")
                        registry = postmortem.registry(w)
                        kept = registry.list()
                        del futures
                        gc.collect()
                        alive = sum(ref() is not None for ref in _refs)
                        return len(kept), alive, [str(f.exception) for f in kept[-2:]]

    try:
        kept, alive, last = asyncio.run(main())
    finally:
        quiet.setLevel(level)
    assert kept == 100
    assert alive <= 100  # frames of dropped failures (and their locals) were freed
    assert last[-1].startswith("failure ")
