"""The worker side of a job: the task that runs the script as a subprocess.

``run_job`` is the function the client submits. It secedes at once (a job does
not hold one of the worker's threads; resources asked for with ``--resources``
stay held until it ends), claims the job with the scheduler's registry, and only
then starts the script, so a task that distributed reschedules after its worker
died is refused instead of running the script a second time.

The script is ``sys.executable SCRIPT ARGS...`` in a session of its own (so
``cancel`` can end it and its children), with stdout and stderr written straight
to files in the worker's local directory: nothing is held in memory, a 50 MB
output costs 50 MB of disk, and the files can be read while the script runs.
``PYTHONUNBUFFERED=1`` makes a script's prints reach those files as they happen.
On Linux the script gets ``SIGKILL`` when the worker dies (``PR_SET_PDEATHSIG``,
set by a tiny launcher that then ``exec``s the script), so a job whose worker was
killed does not run on as an orphan.

The worker's handlers for reading output, stopping and forgetting a job
(``protocol.OUTPUT``/``STOP``/``FORGET``) are installed by the first job that runs
on a worker: no worker plugin or preload is needed, only dask-cli installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dask_cli.jobs import protocol

logger = logging.getLogger("dask_cli.jobs")

# Seconds between SIGTERM and SIGKILL when a job is cancelled.
CANCEL_GRACE = 3.0
# How often a waiting reader looks at the output files' sizes.
POLL_INTERVAL = 0.02
# Replies carry at most this many bytes of output (a chunk).
DEFAULT_CHUNK = 1 << 20

# Sets the parent-death signal, checks the worker is still there, then becomes the
# script: one interpreter start, since execv keeps the setting (prctl(2)).
_LAUNCHER = """\
import ctypes, os, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, 9)
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(137)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


@dataclass
class JobSpec:
    """What the client ships with the task: the script's bytes, its arguments, the
    extra environment, and the working directory as a zip (``None``: an empty one).

    ``script_path`` is the script's path inside the working directory when it lies
    there (it then runs from there), else ``None`` (it is written beside it).
    """

    key: str
    script_name: str
    script: bytes
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: bytes | None = None
    script_path: str | None = None


@dataclass
class LocalJob:
    """A job this worker runs or ran: its directory, its process, its end."""

    key: str
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    done: bool = False
    cancelled: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set (on the worker's event loop) when ``done`` becomes true: a reader waiting
    # for the end wakes at once instead of at its next look at the files.
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def output_path(self, stream: str) -> Path:
        return self.directory / stream

    def size(self, stream: str) -> int:
        try:
            return self.output_path(stream).stat().st_size
        except FileNotFoundError:
            return 0

    def read(self, stream: str, offset: int, limit: int) -> bytes:
        try:
            with open(self.output_path(stream), "rb") as f:
                f.seek(offset)
                return f.read(limit)
        except FileNotFoundError:
            return b""

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the script and everything it started (its session)."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signum)


class WorkerJobs:
    """The jobs of one worker, and the handlers the scheduler calls about them.

    One per worker (``WorkerJobs.of(worker)``); entries stay until the scheduler
    forgets the job's record (``FORGET``), or the worker's local directory goes.
    """

    def __init__(self, worker: Any):
        self.worker = worker
        self.root = Path(worker.local_directory) / "dask-cli-jobs"
        self.jobs: dict[str, LocalJob] = {}

    @classmethod
    def of(cls, worker: Any) -> WorkerJobs:
        jobs = getattr(worker, "dask_cli_jobs", None)
        if jobs is None:
            jobs = worker.dask_cli_jobs = cls(worker)
            worker.handlers[protocol.OUTPUT] = jobs.output
            worker.handlers[protocol.STOP] = jobs.stop
            worker.handlers[protocol.FORGET] = jobs.forget
            try:
                from dask_cli.jobs import shell

                shell.register(worker, jobs)
            except Exception:  # the jobs work without the shell's jobs()
                logger.exception("dask-cli jobs: could not add jobs() to the worker's shell")
        return jobs

    # --- the task's side (a seceded worker thread) ---------------------------------

    def run(self, spec: JobSpec) -> dict[str, Any]:
        # Known before the claim, so that a cancel arriving right after it finds it.
        job = self.jobs[spec.key] = LocalJob(spec.key, self.root / spec.key)
        try:
            answer = self._call(protocol.CLAIM, key=spec.key, worker=self.worker.address)
        except Exception as exc:
            # No claim, no run: better a job that reports it could not start than a
            # script that runs with nobody knowing.
            answer = {"ok": False, "reason": f"could not reach the scheduler: {exc}"}
        if not (isinstance(answer, dict) and answer.get("ok")):
            reason = answer.get("reason") if isinstance(answer, dict) else "no job registry"
            logger.warning("dask-cli job %s not started: %s", spec.key, reason)
            if self.jobs.get(spec.key) is job:
                del self.jobs[spec.key]
            return {"ran": False, "reason": reason}
        try:
            self._start(job, spec)
        except Exception as exc:
            job.done = True
            self._finish(job, None, f"could not start the script: {type(exc).__name__}: {exc}")
            return {"ran": False, "reason": str(exc)}
        assert job.proc is not None
        # Reported while the script runs, not before: a short job ends sooner. The
        # end is reported only after this report got there (the registry's order).
        running: concurrent.futures.Future | None = None
        with contextlib.suppress(Exception):
            running = self._call_soon(protocol.RUNNING, key=spec.key, pid=job.proc.pid)
        returncode = job.proc.wait()
        if job.cancelled:
            job.signal_group(signal.SIGKILL)  # the script's children too
        job.returncode = returncode
        with contextlib.suppress(Exception):
            if running is not None:
                running.result(timeout=30)
        self._finish(job, returncode, None)
        return {"ran": True, "exit_code": returncode}

    def _start(self, job: LocalJob, spec: JobSpec) -> None:
        work = job.directory / "work"
        if job.directory.exists():
            shutil.rmtree(job.directory)
        work.mkdir(parents=True)
        if spec.working_dir is not None:
            with zipfile.ZipFile(io.BytesIO(spec.working_dir)) as archive:
                archive.extractall(work)
        if spec.script_path is not None:
            script = work / spec.script_path
        else:
            # A folder of its own: a script named like the output files cannot clash.
            script = job.directory / "script" / spec.script_name
            script.parent.mkdir()
            script.write_bytes(spec.script)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env[protocol.SCHEDULER_ENV] = self.worker.scheduler.address
        env[protocol.KEY_ENV] = spec.key
        if spec.working_dir is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work), env.get("PYTHONPATH")]))
        env.update(spec.env)
        argv = [str(script), *spec.args]
        if sys.platform.startswith("linux"):
            argv = ["-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *argv]
        with (
            open(job.output_path(protocol.STDOUT), "wb") as out,
            open(job.output_path(protocol.STDERR), "wb") as err,
        ):
            with job.lock:
                if job.cancelled:
                    raise RuntimeError("cancelled before it started")
                job.proc = subprocess.Popen(
                    [sys.executable, *argv],
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )

    def _finish(self, job: LocalJob, returncode: int | None, reason: str | None) -> None:
        """Tell the registry first, then wake the readers: a reader that sees the
        end of the output finds the record already final."""
        try:
            self._call(protocol.FINISHED, key=job.key, exit_code=returncode, reason=reason)
        except Exception as exc:
            logger.warning("dask-cli job %s: could not report its end: %s", job.key, exc)
        job.done = True
        self.worker.loop.add_callback(job.ended.set)  # thread-safe

    def _call(self, op: str, **kwargs: Any) -> Any:
        """``op`` on the scheduler from the job's thread; its reply."""
        return self._call_soon(op, **kwargs).result()

    def _call_soon(self, op: str, **kwargs: Any) -> concurrent.futures.Future:
        """Send ``op`` to the scheduler from the job's thread without waiting for it."""

        async def call() -> Any:
            return await getattr(self.worker.scheduler, op)(**kwargs)

        return asyncio.run_coroutine_threadsafe(call(), self.worker.loop.asyncio_loop)

    # --- handlers (the worker's event loop) ----------------------------------------

    async def output(
        self,
        key: str,
        offsets: dict[str, int] | None = None,
        streams: list[str] | None = None,
        limit: int = DEFAULT_CHUNK,
        wait: float = 0,
    ) -> dict[str, Any]:
        """New output of ``key`` from ``offsets`` on, at most ``limit`` bytes.

        With ``wait``, hold the reply until there is some, the job ended, or
        ``wait`` seconds passed (a long poll: how ``--wait`` and ``-f`` stream).
        ``done`` is true once the job ended and everything was read.
        """
        job = self.jobs.get(key)
        if job is None:
            return {"gone": f"no output of job {key} on worker {self.worker.address}"}
        streams = [s for s in (streams or protocol.STREAMS) if s in protocol.STREAMS]
        offsets = {s: int((offsets or {}).get(s, 0)) for s in streams}
        deadline = time.monotonic() + wait
        while True:
            ended = job.done  # before the sizes: output written before the end is seen
            sizes = {s: job.size(s) for s in streams}
            if ended or any(sizes[s] > offsets[s] for s in streams):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(job.ended.wait(), min(POLL_INTERVAL, remaining))
        data: dict[str, bytes] = {}
        budget = max(1, int(limit))
        for s in streams:
            if budget <= 0 or sizes[s] <= offsets[s]:
                continue
            chunk = job.read(s, offsets[s], min(budget, sizes[s] - offsets[s]))
            data[s] = chunk
            offsets[s] += len(chunk)
            budget -= len(chunk)
        caught_up = all(offsets[s] >= sizes[s] for s in streams)
        return {
            "data": data,
            "offsets": offsets,
            "caught_up": caught_up,
            "done": ended and caught_up,
            "exit_code": job.returncode,
        }

    def stop(self, key: str, grace: float = CANCEL_GRACE) -> dict[str, Any]:
        """SIGTERM to the job's process group now, SIGKILL after ``grace`` seconds."""
        job = self.jobs.get(key)
        if job is None:
            return {"ok": False, "reason": f"job {key} is not on this worker"}
        with job.lock:
            job.cancelled = True
            job.signal_group(signal.SIGTERM)
        if job.proc is not None:
            asyncio.get_running_loop().call_later(grace, job.signal_group, signal.SIGKILL)
        return {"ok": True}

    def forget(self, key: str) -> dict[str, Any]:
        """Drop a finished job's output (its record left the scheduler)."""
        job = self.jobs.get(key)
        if job is None or not job.done:
            return {"ok": False}
        del self.jobs[key]
        shutil.rmtree(job.directory, ignore_errors=True)
        return {"ok": True}


def run_job(spec: JobSpec) -> dict[str, Any]:
    """The task ``dask job submit`` submits: secede, claim, run the script, report.

    Returns ``{"ran": bool, ...}``; the job's outcome lives in the registry.
    """
    from distributed import get_worker, secede

    worker = get_worker()
    secede()
    return WorkerJobs.of(worker).run(spec)
