"""``jobs()`` in a worker's shell: the jobs this worker runs or ran.

A feature of the shell service (:mod:`dask_cli.debug.service.features`) that the
runner registers on its worker when the first job runs there, so the shell core
and its installer never import jobs; sessions opened after that find ``jobs()``
in their namespace beside ``tasks()``, which shows the job's task (long-running).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dask_cli.debug.service import features
from dask_cli.debug.service.helpers import Table, snapshot

if TYPE_CHECKING:
    from dask_cli.jobs.runner import WorkerJobs

COLUMNS = ("key", "pid", "state", "exit code", "output directory")


class JobsInShell(features.ShellFeature):
    name = "jobs"

    def __init__(self, jobs: WorkerJobs):
        self.jobs = jobs

    def helpers(self) -> dict[str, features.HelperFactory]:
        return {"jobs": lambda session: self.table}

    def table(self) -> Table:
        """This worker's jobs: key, pid, running/ended/cancelled, exit code, output directory
        (``stdout`` and ``stderr`` files there)."""
        rows = []
        for job in snapshot(lambda: list(self.jobs.jobs.values())):
            proc = job.proc
            state = "cancelled" if job.cancelled else ("ended" if job.done else "running")
            rows.append((job.key, proc.pid if proc else None, state, job.returncode, job.directory))
        return Table(COLUMNS, rows)


def register(worker: Any, jobs: WorkerJobs) -> None:
    features.register(worker, JobsInShell(jobs))
