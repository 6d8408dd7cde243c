"""The user's side of jobs: submit one, follow its output, ask about it, cancel it.

Functions return data (records, exit codes); output bytes go to an ``on_output``
callback, so the command decides where they are printed. Only submitting needs a
distributed ``Client`` (to create the task); everything else is a request to
the scheduler's registry over one ``rpc``, so ``gather``, ``logs``, ``status``,
``list`` and ``cancel`` work from any machine that can reach the scheduler, long
after the submitting process exited.
"""

from __future__ import annotations

import asyncio
import getpass
import re
import socket
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dask_cli.debug.client.settings import ClientSettings
from dask_cli.errors import ConnectionFailed, DaskCliError
from dask_cli.jobs import protocol, upload
from dask_cli.jobs.protocol import JobRecord

OnOutput = Callable[[str, bytes], None]

# Seconds one long poll may wait for output (a reply is also a sign of life).
POLL_WAIT = 2.0


class JobNotFound(DaskCliError):
    """The scheduler has no record of that key (never had, or dropped it)."""


class NoJobRegistry(DaskCliError):
    """The scheduler has no job registry: no job was ever submitted to it."""


@dataclass
class SubmitRequest:
    """What ``dask job submit`` was asked to run, and where."""

    script: str
    args: list[str] = field(default_factory=list)
    name: str | None = None
    worker: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None


@dataclass
class Submitted:
    record: JobRecord
    notes: list[str] = field(default_factory=list)


def new_key(name: str) -> str:
    """``job-NAME-HEX``: readable in the dashboard (its task prefix is ``job-NAME``)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "script"
    return f"job-{slug}-{uuid.uuid4().hex[:12]}"


def _submitter() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return f"{user}@{socket.gethostname()}"


def build_job(request: SubmitRequest) -> tuple[JobRecord, Any]:
    """The record and the ``JobSpec`` for ``request``; size limits checked here, before
    anything is sent."""
    from dask_cli.jobs.runner import JobSpec

    limit = upload.upload_limit()
    script = upload.read_script(request.script, limit)
    archive = None
    script_path = None
    if request.working_dir is not None:
        archive = upload.zip_directory(request.working_dir, limit, len(script))
        script_path = upload.path_inside(request.script, request.working_dir)
    name = request.name or Path(request.script).stem
    key = new_key(name)
    spec = JobSpec(
        key=key,
        script_name=Path(request.script).name,
        script=script,
        args=list(request.args),
        env=dict(request.env),
        working_dir=archive,
        script_path=script_path,
    )
    record = JobRecord(
        key=key,
        name=name,
        script=Path(request.script).name,
        args=list(request.args),
        submitter=_submitter(),
        requested_worker=request.worker,
        resources=dict(request.resources),
    )
    return record, spec


def _pick_worker(workers: dict[str, Any], wanted: str) -> str:
    for address, info in workers.items():
        if wanted in (address, str(info.get("name"))):
            return address
    names = sorted(str(info.get("name")) for info in workers.values())
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    raise DaskCliError(
        f"No worker {wanted!r} in the cluster",
        hint=f"Workers: {shown}" if names else "The cluster has no workers.",
    )


def _resource_notes(workers: dict[str, Any], resources: dict[str, float]) -> list[str]:
    notes = []
    for resource, amount in resources.items():
        if not any(
            (info.get("resources") or {}).get(resource, 0) >= amount for info in workers.values()
        ):
            notes.append(
                f"No worker offers {resource}={amount:g} now: the job stays PENDING until one does."
            )
    return notes


async def connect_client(settings: ClientSettings) -> Any:
    """An asynchronous distributed ``Client``; failures to connect are one line."""
    from distributed import Client

    address = settings.scheduler_address()
    timeout = settings.connect_timeout()
    try:
        return await asyncio.wait_for(
            Client(address, security=settings.security(), asynchronous=True, timeout=timeout),
            timeout + 1,  # distributed's own bound is looser (retries with backoff)
        )
    except (OSError, asyncio.TimeoutError) as exc:
        from dask_cli.debug.client.connect import classify

        raise classify(address, exc, timeout, "scheduler") from None


async def submit(settings: ClientSettings, request: SubmitRequest) -> Submitted:
    """Submit one job from a client of its own (closed before returning)."""
    job = build_job(request)  # bad input fails before connecting
    client = await connect_client(settings)
    try:
        return await submit_with(client, request, job)
    finally:
        await client.close()


async def submit_with(
    client: Any, request: SubmitRequest, job: tuple[JobRecord, Any] | None = None
) -> Submitted:
    """Record the job on the scheduler, then submit its task with ``client``
    (fire-and-forget: it runs even after the client is gone). The registry plugin is
    registered on the way, idempotently: one cheap request when it is there.
    """
    from distributed import fire_and_forget

    from dask_cli.jobs.registry import JobRegistry
    from dask_cli.jobs.runner import run_job

    record, spec = job or build_job(request)
    if getattr(client, "_dask_cli_job_registry", None) != client.scheduler.address:
        try:
            await client.register_plugin(JobRegistry())
        except Exception as exc:
            raise DaskCliError(
                f"The scheduler refused the dask-cli job registry: {exc}",
                hint="dask-cli must be installed where the scheduler and workers run.",
            ) from None
        client._dask_cli_job_registry = client.scheduler.address  # once per client
    targets = None
    notes: list[str] = []
    if request.worker or request.resources:
        identity = await client.scheduler.identity(n_workers=-1)
        workers = identity.get("workers") or {}
        if request.worker:
            targets = [_pick_worker(workers, request.worker)]
        notes = _resource_notes(workers, request.resources)
    answer = await getattr(client.scheduler, protocol.SUBMIT)(record=record.to_dict())
    if not answer.get("ok"):
        raise DaskCliError(f"The scheduler refused the job: {answer.get('reason')}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph")
        future = client.submit(
            run_job,
            spec,
            key=record.key,
            pure=False,
            workers=targets,
            allow_other_workers=False,
            resources=request.resources or None,
            retries=0,
        )
    fire_and_forget(future)
    return Submitted(JobRecord.from_dict(answer["record"]), notes)


class SchedulerLink:
    """Requests to the scheduler's job registry over one reusable ``rpc``."""

    def __init__(self, settings: ClientSettings):
        self.settings = settings
        self.address = settings.scheduler_address()
        self.timeout = settings.connect_timeout()
        self._rpc: Any = None

    async def __aenter__(self) -> SchedulerLink:
        from distributed.core import rpc

        self._rpc = rpc(
            self.address,
            timeout=self.timeout,
            connection_args=self.settings.security().get_connection_args("client"),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._rpc.close_rpc()

    async def call(self, op: str, *, patience: float = 0, **kwargs: Any) -> dict[str, Any]:
        """``op`` on the scheduler; ``patience``: seconds the handler itself may take
        (a long poll, a cancel), on top of ``--timeout``."""
        from dask_cli.debug.client.connect import classify

        try:
            reply = await asyncio.wait_for(
                getattr(self._rpc, op)(**kwargs), self.timeout + patience + 1
            )
        except (OSError, asyncio.TimeoutError) as exc:
            raise classify(self.address, exc, self.timeout, "scheduler") from None
        except Exception as exc:
            if "CommClosed" in type(exc).__name__:
                raise ConnectionFailed(f"Lost the connection to {self.address}: {exc}") from None
            raise DaskCliError(f"The scheduler failed to answer {op}: {exc}") from None
        if not isinstance(reply, dict):
            raise NoJobRegistry(
                f"The scheduler at {self.address} has no dask-cli job registry",
                hint="No job was submitted to it since it started (`dask job submit`).",
            )
        if "missing" in reply:
            raise _not_found(kwargs.get("key", "?"), reply, self.address)
        return reply


def _not_found(key: str, reply: dict[str, Any], address: str) -> JobNotFound:
    if reply["missing"] == protocol.MISSING_DROPPED:
        return JobNotFound(
            f"Job {key} was dropped: the scheduler keeps the last "
            f"{reply.get('max_records')} job records",
            hint="Raise the dask config cli.job.max-records on the scheduler to keep more.",
        )
    return JobNotFound(
        f"No job {key} on the scheduler at {address}",
        hint="`dask job list` shows the jobs it knows.",
    )


async def status(settings: ClientSettings, key: str) -> JobRecord:
    async with SchedulerLink(settings) as link:
        reply = await link.call(protocol.STATUS, key=key)
    return JobRecord.from_dict(reply["record"])


async def list_jobs(settings: ClientSettings) -> list[JobRecord]:
    """The jobs the scheduler remembers; none when nothing was ever submitted to it."""
    async with SchedulerLink(settings) as link:
        try:
            reply = await link.call(protocol.LIST)
        except NoJobRegistry:
            return []
    return [JobRecord.from_dict(r) for r in reply.get("records") or []]


@dataclass
class Cancelled:
    record: JobRecord
    already_done: bool


async def cancel(settings: ClientSettings, key: str) -> Cancelled:
    """Cancel ``key``; returns once its process is gone (or the registry gave up)."""
    async with SchedulerLink(settings) as link:
        reply = await link.call(protocol.CANCEL, patience=30, key=key)
    return Cancelled(JobRecord.from_dict(reply["record"]), bool(reply.get("already")))


async def follow(
    link: SchedulerLink,
    key: str,
    streams: tuple[str, ...],
    on_output: OnOutput,
    until_done: bool = True,
) -> JobRecord:
    """Pass ``key``'s output to ``on_output`` chunk by chunk (bounded memory) and return
    its record: at the job's end with ``until_done``, else once caught up."""
    offsets = dict.fromkeys(streams, 0)
    while True:
        wait = POLL_WAIT if until_done else 0
        reply = await link.call(
            protocol.READ, patience=wait, key=key, offsets=offsets, streams=list(streams), wait=wait
        )
        record = JobRecord.from_dict(reply["record"])
        for stream, chunk in (reply.get("data") or {}).items():
            if chunk:
                on_output(stream, chunk)
        offsets.update(reply.get("offsets") or {})
        if reply.get("gone"):
            raise DaskCliError(
                f"Job {key} is {record.state}, but {reply['gone']}",
                hint=record.reason,
            )
        if reply.get("done"):
            return record
        if not until_done and reply.get("caught_up", True):
            return record


async def gather(
    settings: ClientSettings,
    key: str,
    streams: tuple[str, ...],
    on_output: OnOutput,
    wait: bool = True,
) -> JobRecord:
    """The job's whole output, streamed; waits for the end unless ``wait`` is false
    (then a job that has not ended is an error)."""
    async with SchedulerLink(settings) as link:
        if not wait:
            reply = await link.call(protocol.STATUS, key=key)
            record = JobRecord.from_dict(reply["record"])
            if not record.done:
                raise DaskCliError(
                    f"Job {key} is {record.state}",
                    hint=f"`dask job gather {key}` waits for it to end.",
                )
        return await follow(link, key, streams, on_output)


async def logs(
    settings: ClientSettings, key: str, on_output: OnOutput, follow_output: bool = False
) -> JobRecord:
    """Output so far (stdout and stderr); with ``follow_output`` until the job ends."""
    async with SchedulerLink(settings) as link:
        return await follow(link, key, protocol.STREAMS, on_output, until_done=follow_output)


async def submit_and_follow(
    settings: ClientSettings,
    request: SubmitRequest,
    on_submitted: Callable[[Submitted], None],
    on_output: OnOutput,
) -> JobRecord:
    submitted = await submit(settings, request)
    on_submitted(submitted)
    async with SchedulerLink(settings) as link:
        return await follow(link, submitted.record.key, protocol.STREAMS, on_output)
