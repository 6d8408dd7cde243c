"""The job wire: handler names, job states and the records both ends exchange.

One definition used by the submitting client, the scheduler's registry and the
runner on the worker. Messages are plain dicts of msgpack-friendly values (the
output chunks are ``bytes``), so nothing here imports distributed.

Who talks to whom::

    client  --SUBMIT/STATUS/LIST/CANCEL/READ-->  scheduler (JobRegistry)
    worker task  --CLAIM/RUNNING/FINISHED-->     scheduler (JobRegistry)
    scheduler  --OUTPUT/STOP/FORGET-->           worker (the runner's handlers)

The client only ever needs the scheduler's address: output is read through the
scheduler, which asks the worker that ran the job, so a client that can reach
the scheduler alone (a login node, a tunnel) can follow any job.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# The name the scheduler plugin is registered under.
PLUGIN_NAME = "dask-cli-jobs"

# Scheduler handlers, served by the registry.
SUBMIT = "dask_cli_job_submit"
CLAIM = "dask_cli_job_claim"
RUNNING = "dask_cli_job_running"
FINISHED = "dask_cli_job_finished"
STATUS = "dask_cli_job_status"
LIST = "dask_cli_job_list"
CANCEL = "dask_cli_job_cancel"
READ = "dask_cli_job_read"

# Worker handlers, installed by the first job that runs on a worker.
OUTPUT = "dask_cli_job_output"
STOP = "dask_cli_job_stop"
FORGET = "dask_cli_job_forget"

PENDING = "PENDING"
RUNNING_STATE = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
STATES = (PENDING, RUNNING_STATE, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})

STDOUT = "stdout"
STDERR = "stderr"
STREAMS = (STDOUT, STDERR)

# Environment variables the script finds set.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
KEY_ENV = "DASK_JOB_KEY"

# How a record that is not there is explained (``STATUS``/``READ``/``CANCEL`` replies).
MISSING_DROPPED = "dropped"
MISSING_UNKNOWN = "unknown"


@dataclass
class JobRecord:
    """What the scheduler knows about one job; ``to_dict``/``from_dict`` on the wire.

    Times are the scheduler's ``time.time()``. ``worker`` is the address of the
    worker that claimed the job (``None`` while it is pending), ``exit_code`` the
    script's status (negative: killed by that signal), ``reason`` one line saying
    why a job failed or was cancelled.
    """

    key: str
    name: str
    script: str
    args: list[str] = field(default_factory=list)
    state: str = PENDING
    submitted: float = field(default_factory=time.time)
    submitter: str | None = None
    requested_worker: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    started: float | None = None
    finished: float | None = None
    worker: str | None = None
    worker_name: str | None = None
    pid: int | None = None
    exit_code: int | None = None
    reason: str | None = None
    cancel_requested: bool = False

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def duration(self, now: float | None = None) -> float | None:
        """Seconds it ran (so far, while running); ``None`` before it started."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else (now or time.time())
        return max(0.0, end - self.started)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def exit_status(record: JobRecord) -> int:
    """The exit status a command reports for a finished job, as a shell would.

    The script's own status when it exited; 128+N when signal N killed it; 1 when
    it never ran to an end of its own (its worker died, it could not start).
    """
    if record.state == SUCCEEDED:
        return 0
    code = record.exit_code
    if code is None or code == 0:
        return 1
    if code < 0:
        return 128 - code
    return code


def describe_exit(code: int | None) -> str | None:
    """``exit status 3`` / ``killed by signal 9 (SIGKILL)``; ``None`` when unknown."""
    if code is None:
        return None
    if code >= 0:
        return f"exit status {code}"
    import signal

    try:
        name = f" ({signal.Signals(-code).name})"
    except ValueError:
        name = ""
    return f"killed by signal {-code}{name}"
