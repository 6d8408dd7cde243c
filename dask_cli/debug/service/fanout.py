"""``dask worker exec`` through the scheduler: one connection from the client, and the
scheduler's own open connections to its workers from there.

Opening a connection and a shell session per worker made ``exec --all`` cost about
2 ms per worker on the client (1.97x ``client.run`` at 32 workers). ``client.run``
is fast because the scheduler already holds a connection to every worker. This
feature does the same for shell code:

- on the scheduler, :class:`ExecFanout` answers ``EXEC_HANDLER``: for each target it
  takes a connection from the scheduler's pool (``scheduler.rpc``), sends the code to
  the worker's ``WORKER_EXEC_HANDLER`` and relays what comes back to the client as it
  arrives, tagged with the worker's name (``ExecOutput``, ``ExecDone``; ``ExecAlive``
  while code runs, so the client can tell a slow worker from a dead scheduler);
- on each worker, :class:`WorkerExec` runs the code in a shell session of its own on
  the shell service (its thread, its output capture, its audit trail: exactly what
  ``dask worker shell -c`` does) and streams the session's ``output`` messages back
  on the scheduler's connection, then the ``result``.

The worker's handler runs on the worker's event loop. A worker whose loop is blocked
does not start the code within ``start_within`` seconds: the scheduler reports it as
failed and the worker drops the request when its loop frees up (``not_after``), so
the code never runs late or twice. ``dask worker shell NAME -c`` reaches such a
worker directly, through its shell service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from dask_cli.debug import protocol
from dask_cli.debug.service import features

logger = logging.getLogger("dask_cli.debug.service")

EVAL_ID = 1


class ExecFanout(features.ShellFeature):
    """The scheduler's half: relays one ``exec`` to many workers over its own comms."""

    name = "exec-fanout"

    def __init__(self, scheduler: Any):
        self.scheduler = scheduler

    def handlers(self) -> dict[str, Any]:
        return {protocol.EXEC_HANDLER: self.exec_on_workers}

    async def exec_on_workers(
        self,
        comm: Any,
        workers: list[dict[str, str]],
        source: str,
        client: dict[str, Any] | None = None,
        start_within: float = 10.0,
    ) -> dict[str, Any]:
        """Stream ``ExecOutput``/``ExecDone`` for every worker of ``workers`` (each
        ``{"name", "address"}``) to ``comm``; the reply (``ExecEnd``) ends the stream."""
        lock = asyncio.Lock()

        async def send(message: protocol.Message) -> None:
            async with lock:
                await comm.write(message.to_msg())

        async def alive() -> None:
            while True:
                await asyncio.sleep(start_within / 2)
                await send(protocol.ExecAlive())

        tasks = [
            asyncio.ensure_future(
                self._one(send, str(w["name"]), str(w["address"]), source, client, start_within)
            )
            for w in workers
        ]
        tasks.append(asyncio.ensure_future(alive()))
        try:
            await asyncio.gather(*tasks[:-1])
        finally:
            # The client went away (a failed send), or all are done: stop the rest.
            for task in tasks:
                task.cancel()
        return protocol.ExecEnd().to_msg()

    async def _one(
        self,
        send: Any,
        name: str,
        address: str,
        source: str,
        client: dict[str, Any] | None,
        start_within: float,
    ) -> None:
        from distributed.comm.core import CommClosedError

        pool = self.scheduler.rpc
        done = protocol.ExecDone(worker=name, status="failed")
        try:
            wcomm = await asyncio.wait_for(pool.connect(address), start_within)
        except Exception as exc:
            done.error = f"cannot reach {address}: {exc}"
            await send(done)
            return
        reusable = False
        try:
            await wcomm.write(
                {
                    "op": protocol.WORKER_EXEC_HANDLER,
                    "source": source,
                    "client": client or {},
                    "not_after": time.time() + start_within,
                    "reply": True,
                }
            )
            started = await asyncio.wait_for(wcomm.read(), start_within)
            if not isinstance(started, dict) or started.get("op") != "started":
                # No such handler, or a refusal: either way the comm is still sound.
                reusable = started is None or isinstance(started, dict)
                done.error = _refusal(started)
            else:
                while True:
                    msg = await wcomm.read()
                    op = msg.get("op") if isinstance(msg, dict) else None
                    if op == "output":
                        await send(
                            protocol.ExecOutput(worker=name, stream=msg["stream"], text=msg["text"])
                        )
                    elif op == "result":
                        done.status = str(msg.get("status", "error"))
                        done.traceback = msg.get("traceback")
                        reusable = True
                        break
                    else:
                        done.error = f"unexpected answer {op!r}"
                        break
        except asyncio.TimeoutError:
            done.error = (
                f"did not start within {start_within:g} s (is its event loop blocked? "
                "`dask worker shell NAME -c CODE` reaches it directly)"
            )
        except (OSError, CommClosedError) as exc:
            done.error = f"lost the connection: {exc}"
        finally:
            if reusable:
                pool.reuse(address, wcomm)
            else:
                wcomm.abort()
        await send(done)


def _refusal(answer: Any) -> str:
    if answer is None:
        return "no dask-cli exec handler (start it with `dask worker` or --preload dask_cli.debug)"
    if isinstance(answer, dict) and answer.get("op") == "result":
        return str(answer.get("traceback") or "refused").strip()
    return f"unexpected answer {answer!r:.80}"


class WorkerExec(features.ShellFeature):
    """The worker's half: runs the code in a session of its own on the shell service."""

    name = "exec"

    def __init__(self, worker: Any):
        self.worker = worker

    def handlers(self) -> dict[str, Any]:
        return {protocol.WORKER_EXEC_HANDLER: self.run}

    async def run(
        self,
        comm: Any,
        source: str,
        client: dict[str, Any] | None = None,
        not_after: float | None = None,
    ) -> dict[str, Any]:
        """``started``, the session's ``output`` messages, and (as the reply) its ``result``."""
        service = getattr(self.worker, "dask_cli_shell", None)
        if service is None:
            return _error("this worker has no shell service")
        if not_after is not None and time.time() > not_after:
            # The scheduler gave up waiting (our loop was blocked): never run late.
            return _error("started too late: the scheduler stopped waiting")
        await comm.write({"op": "started"})
        worker_loop = asyncio.get_running_loop()
        outcome: dict[str, Any] = {}

        async def send(msg: dict[str, Any]) -> None:  # on the service's loop
            if msg.get("op") == "result":
                outcome.update(msg)
                return
            if msg.get("op") == "output":
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(comm.write(msg), worker_loop)
                )

        request = protocol.Eval(id=EVAL_ID, source=source, mode="exec", filename="<exec>")
        try:
            await service.run_eval(request, client or {}, send)
        except Exception as exc:
            logger.warning("dask-cli exec: %r", exc)
            return _error(f"{type(exc).__name__}: {exc}")
        return outcome or _error("the session ended without a result")


def _error(text: str) -> dict[str, Any]:
    return protocol.Result(id=EVAL_ID, status="error", traceback=text).to_msg()


def install_scheduler(scheduler: Any) -> None:
    features.register(scheduler, ExecFanout(scheduler))


def install_worker(worker: Any) -> None:
    features.register(worker, WorkerExec(worker))
