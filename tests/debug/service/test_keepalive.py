"""``dask worker --keepalive``: every failure cause, with and without the nanny.

The causes run at once, on three schedulers (one stays up, one is killed, one
shuts down), so the 10 s "still alive" check is paid once for all of them. The
real ``dask scheduler``/``dask worker`` processes and the ``debug/`` scenario
scripts cause the failures; ``dask worker shell ADDRESS -c`` reads data back.
"""

from __future__ import annotations

import concurrent.futures
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dask_cli.testing import ProcessCluster, run_dask

DEBUG = Path(__file__).resolve().parents[3] / "debug"
KEPT = (
    r"is kept alive for post-mortem: (?P<reason>.*?)\. "
    r"Inspect it with: dask worker shell (?P<shell>\S+)"
)
ALIVE_FOR = 10.0


def scenario(name: str, scheduler: str, worker: str) -> str:
    done = subprocess.run(
        [sys.executable, str(DEBUG / f"{name}.py"), "--scheduler", scheduler, "--worker", worker],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def hold_data(scheduler: str, names: list[str]) -> None:
    """Each named worker computes ``held-NAME``; a published dataset keeps it there."""
    from distributed import Client

    with Client(scheduler, timeout="20s") as client:
        workers = {
            str(w["name"]): a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()
        }
        futures = [
            client.submit(
                lambda n: f"data of {n}", name, key=f"held-{name}", workers=[workers[name]]
            )
            for name in names
        ]
        client.gather(futures)
        client.publish_dataset(*futures, name="held")


def on_scheduler(scheduler: str, function) -> None:  # noqa: ANN001
    from distributed import Client

    with Client(scheduler, timeout="20s") as client:
        client.run_on_scheduler(function)


def forget_worker(name: str):  # noqa: ANN201
    """A function for ``run_on_scheduler``: drop worker ``name`` without closing it, so its
    next heartbeat hears "missing" (``worker-heartbeat-missing``)."""

    async def forget(dask_scheduler) -> None:  # noqa: ANN001
        address = next(a for a, ws in dask_scheduler.workers.items() if ws.name == name)
        await dask_scheduler.remove_worker(address, stimulus_id="test-forget", close=False)

    return forget


def shell_c(target: str, code: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_dask("worker", "shell", target, *extra, "-c", code, timeout=60)


@pytest.mark.timeout(150)
def test_every_failure_cause_keeps_the_worker_alive(tmp_path: Path) -> None:
    up = ProcessCluster(tmp_path / "up")  # stays up: fail_hard, lifetime, heartbeat
    killed = ProcessCluster(tmp_path / "killed")  # its scheduler crashes
    closed = ProcessCluster(tmp_path / "closed")  # its scheduler shuts down (SIGTERM)
    clusters = (up, killed, closed)
    for cluster in clusters:
        cluster.directory.mkdir()
    try:
        for cluster in clusters:
            cluster.start_scheduler()
        kept: dict[str, tuple[ProcessCluster, list[str]]] = {}
        plain: dict[str, tuple[ProcessCluster, list[str]]] = {}
        for nanny, suffix in ((True, "n"), (False, "p")):
            flags = [] if nanny else ["--no-nanny"]
            kept[f"fail-hard-{suffix}"] = (up, flags)
            kept[f"lifetime-{suffix}"] = (up, [*flags, "--lifetime", "12s"])
            kept[f"heartbeat-{suffix}"] = (up, flags)
            kept[f"killed-{suffix}"] = (killed, flags)
            kept[f"closed-{suffix}"] = (closed, flags)
        kept["timeout-p"] = (killed, ["--no-nanny", "--keepalive-timeout", "5s"])
        kept["switched-on-p"] = (up, ["--no-nanny"])  # `dask worker keepalive NAME on`
        plain["plain-fail-hard-p"] = (up, ["--no-nanny"])
        plain["plain-lifetime-p"] = (up, ["--no-nanny", "--lifetime", "12s"])
        plain["plain-killed-p"] = (killed, ["--no-nanny"])
        plain["plain-killed-n"] = (killed, [])
        for name, (cluster, flags) in kept.items():
            keep = [] if name.startswith("switched-on") else ["--keepalive"]
            cluster.start_worker(name, *keep, *flags, wait=False)
        for name, (cluster, flags) in plain.items():
            cluster.start_worker(name, *flags, wait=False)
        everyone = {**kept, **plain}
        for name, (cluster, _) in everyone.items():
            cluster.workers[name].wait_for(r"Registered to:", 60)
        for cluster in clusters:
            hold_data(
                cluster.scheduler_address, [n for n, (c, _) in everyone.items() if c is cluster]
            )

        switched = run_dask(
            "worker", "keepalive", "switched-on-p", "on", "--scheduler", up.scheduler_address
        )
        assert switched.returncode == 0, switched.stderr
        assert "Keep-alive on for worker switched-on-p" in switched.stdout

        # The causes.
        for name in ("fail-hard-n", "fail-hard-p", "switched-on-p", "plain-fail-hard-p"):
            scenario("internal_error", up.scheduler_address, name)
        for name in ("heartbeat-n", "heartbeat-p"):
            on_scheduler(up.scheduler_address, forget_worker(name))
        scenario("scheduler_dies", killed.scheduler_address, "killed-n")
        closed.scheduler.send_signal(signal.SIGTERM)
        # --lifetime 12s runs out by itself.

        shells: dict[str, str] = {}
        for name, (cluster, _) in kept.items():
            match = cluster.workers[name].wait_for(KEPT, 40)
            shells[name] = match["shell"]
        last_cause = time.monotonic()
        reasons = {
            name: re.search(KEPT, c.workers[name].output())["reason"]
            for name, (c, _) in kept.items()
        }
        assert "fail-hard" in reasons["fail-hard-n"] and "fail-hard" in reasons["fail-hard-p"]
        assert "lifetime" in reasons["lifetime-p"]
        assert "scheduler" in reasons["killed-p"] and "scheduler" in reasons["closed-n"]

        # Without --keepalive the same causes end the worker as distributed does.
        for name in ("plain-fail-hard-p", "plain-lifetime-p", "plain-killed-p", "plain-killed-n"):
            process = plain[name][0].workers[name]
            assert process.wait(40) == 0, process.output()
            assert "kept alive" not in process.output()
            assert re.search(
                r"Stopping worker at \S+\. Reason: (worker-|scheduler-)", process.output()
            )

        # The kept-alive timeout ends that one after about 5 s.
        timed = killed.workers["timeout-p"]
        assert timed.wait(40) == 0, timed.output()
        assert "dask-cli-keepalive-timeout" in timed.output()
        del kept["timeout-p"]

        # The kept-alive worker is listed by the scheduler it left, resolves by name.
        listed = run_dask("worker", "list", "--json", "--scheduler", up.scheduler_address)
        assert listed.returncode == 0, listed.stderr
        import json

        status = {r["name"]: r["status"] for r in json.loads(listed.stdout)}
        assert status["fail-hard-n"] == "kept-alive", status
        assert status["heartbeat-p"] == "kept-alive", status
        by_name = shell_c(
            "fail-hard-n", "print(data['held-fail-hard-n'])", "--scheduler", up.scheduler_address
        )
        assert by_name.stdout.strip() == "data of fail-hard-n", by_name.stdout + by_name.stderr

        time.sleep(max(0.0, ALIVE_FOR - (time.monotonic() - last_cause)))
        for name, (cluster, _) in kept.items():
            assert cluster.workers[name].alive(), cluster.workers[name].output()

        # Each reads the data it held, through the address its log line gave.
        def read(name: str) -> tuple[str, subprocess.CompletedProcess[str]]:
            return name, shell_c(shells[name], f"print(data['held-{name}'])")

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for name, done in pool.map(read, list(kept)):
                assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
                assert done.stdout.strip() == f"data of {name}"

        # `dask worker release NAME` ends one (with its nanny); SIGTERM the others: exit 0.
        released = run_dask("worker", "release", "fail-hard-n", "--scheduler", up.scheduler_address)
        assert released.returncode == 0, released.stderr
        assert up.workers["fail-hard-n"].wait(30) == 0
        del kept["fail-hard-n"]
        # ... and by the address from the log line, with its scheduler gone.
        released = run_dask("worker", "release", shells["killed-p"])
        assert released.returncode == 0, released.stderr
        assert killed.workers["killed-p"].wait(30) == 0
        del kept["killed-p"]
        for name, (cluster, _) in kept.items():
            cluster.workers[name].send_signal(signal.SIGTERM)
        for name, (cluster, _) in kept.items():
            assert cluster.workers[name].wait(30) == 0, cluster.workers[name].output()
    except BaseException:
        for cluster in clusters:
            sys.stderr.write(cluster.dump_logs())
        raise
    finally:
        for cluster in clusters:
            cluster.close()


@pytest.mark.timeout(60)
def test_keepalive_switches_on_and_off_and_release_needs_a_kept_alive_worker(
    cluster: ProcessCluster,
) -> None:
    done = run_dask("worker", "release", "w1", "--scheduler", cluster.scheduler_address)
    assert done.returncode == 1
    assert "not kept alive" in done.stderr
    assert "Traceback" not in done.stderr
    assert cluster.workers["w1"].alive()

    probe = "from dask_cli.debug.service import keepalive; print(keepalive.enabled(worker))"
    address = cluster.scheduler_address
    for state, expected in (("on", "True"), ("off", "False")):
        done = run_dask("worker", "keepalive", "w2", state, "--scheduler", address)
        assert done.returncode == 0, done.stderr
        assert f"Keep-alive {state} for worker w2" in done.stdout
        seen = shell_c("w2", probe, "--scheduler", address)
        assert seen.stdout.strip() == expected, seen.stdout + seen.stderr


@pytest.mark.timeout(60)
def test_in_process_worker_is_kept_alive_when_its_scheduler_closes() -> None:
    """The mechanism without subprocesses: a Worker object, its Scheduler closed."""
    import asyncio

    import dask
    from distributed import Scheduler, Worker
    from distributed.core import Status

    from dask_cli import config
    from dask_cli.debug import protocol
    from dask_cli.debug.service import keepalive
    from dask_cli.debug.service.server import target_info

    config.register_defaults()

    async def main() -> None:
        with dask.config.set({"cli.keepalive.enabled": True}):
            scheduler = await Scheduler(host="127.0.0.1", port=0, dashboard_address=":0")
            async with Worker(scheduler.address, host="127.0.0.1", nthreads=1) as worker:
                keepalive.install(worker)
                worker.data["kept"] = 123
                await scheduler.close()
                for _ in range(200):
                    if keepalive.state(worker) is not None:
                        break
                    await asyncio.sleep(0.05)
                state = keepalive.state(worker)
                assert state is not None and "scheduler" in state["reason"]
                assert target_info(worker).status == protocol.KEPT_ALIVE
                assert worker.status == Status.paused
                assert worker.data["kept"] == 123
                assert not worker.periodic_callbacks["heartbeat"].is_running()
                keepalive.release(worker)
                await asyncio.wait_for(worker.finished(), 20)
                assert worker.status == Status.closed

    asyncio.run(main())


def test_failure_reasons_and_operator_requests() -> None:
    from dask_cli.debug.service.keepalive import describe_failure

    for reason in (
        "worker-handle-scheduler-connection-broken",
        "worker-heartbeat-missing",
        "worker-heartbeat-error",
        "worker-lifetime-reached",
        "scheduler-close",
        "worker-execute-fail-hard",
    ):
        assert describe_failure(reason), reason
    assert "Worker.execute" in describe_failure("worker-execute-fail-hard")
    for reason in ("signal-15", "nanny-close", "worker-close", "scheduler-close-worker"):
        assert describe_failure(reason) is None, reason
