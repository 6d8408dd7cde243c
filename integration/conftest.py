"""A real dask cluster in containers (the top-level docker-compose.yml), for tests that
break it on purpose.

Run through ``integration/run.sh``, which sets up the engine and images first. Run
directly (``.venv/bin/pytest integration/``) it needs a Docker engine that answers
(``DOCKER_HOST``) and builds the project image itself. Either way, the session fixture
brings the cluster up once, waits until the scheduler reports both workers, and takes
it down with ``down -v`` at the end, also when something failed. A failing test gets
every container's logs attached to its report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from harness import COMPOSE, COUNT_WORKERS, REPO, WORKER_NAMES, Compose, docker, wait_until


def _require_engine() -> None:
    """Fail (never skip) with the reason when the suite cannot run."""
    for tool in ("docker", "docker-compose"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: run the suite with integration/run.sh", pytrace=False)
    info = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=20)
    if info.returncode != 0:
        pytest.fail(
            "no Docker engine answers (DOCKER_HOST="
            f"{os.environ.get('DOCKER_HOST', 'unset')}): {info.stderr.strip()}\n"
            "Run the suite with integration/run.sh, which starts one.",
            pytrace=False,
        )


def _cluster_size() -> int:
    result = COMPOSE.python(COUNT_WORKERS, timeout=40)
    for line in result.stdout.splitlines():
        if line.startswith("workers:"):
            return int(line.split()[1])
    return 0


def bring_up(compose: Compose) -> None:
    """``up -d`` and wait until the scheduler reports both workers."""
    compose.run("up", "-d", "--no-build", "--force-recreate", timeout=180)
    wait_until(
        lambda: _cluster_size() == len(WORKER_NAMES),
        timeout=120,
        interval=1,
        what="the scheduler to report both workers",
    )


@pytest.fixture(scope="session")
def compose() -> Iterator[Compose]:
    """The compose cluster, up with both workers registered; torn down at the end."""
    _require_engine()
    if not os.environ.get("DASK_CLI_INTEGRATION_BUILT"):
        # Run directly with pytest: bring the wheels and the image up to date first.
        wheels = subprocess.run(
            ["bash", str(REPO / "integration" / "engine.sh"), "wheels"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if wheels.returncode != 0:
            pytest.fail(f"building wheels failed:\n{wheels.stderr}", pytrace=False)
        COMPOSE.run("build", "--quiet", timeout=900)
    COMPOSE.run("down", "-v", "--remove-orphans", "--timeout", "5", timeout=120, check=False)
    try:
        COMPOSE.started = True
        bring_up(COMPOSE)
        yield COMPOSE
    finally:
        COMPOSE.run("down", "-v", "--remove-orphans", "--timeout", "5", timeout=180, check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach every container's logs to the report of a failed test (while the
    cluster still exists: the session fixture tears it down only at the end)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and COMPOSE.started and "compose" in getattr(item, "fixturenames", ()):
        report.sections.append(("docker-compose logs", COMPOSE.logs()))
