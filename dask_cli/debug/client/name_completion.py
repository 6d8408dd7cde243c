"""Live worker names for the shell's Tab completion of ``dask worker shell NAME``.

click calls ``complete_worker_name`` when the user presses Tab in bash/zsh/fish
(with ``_DASK_COMPLETE`` set). It asks the scheduler for its workers and returns
the names that start with what was typed. A completion must never print an error
or hang the user's shell: any failure (no scheduler configured, scheduler down,
TLS refused) gives no completions, and the whole question is bounded by a short
timeout.

Importing this module imports nothing heavy: command modules pass
``complete_worker_name`` to ``click.argument(shell_complete=...)`` at import
time, and ``dask worker shell --help`` must not import distributed.
"""

from __future__ import annotations

from typing import Any

# Tab must feel instant; a scheduler that does not answer in this time gets no say.
NAME_COMPLETION_TIMEOUT = 0.5


def complete_worker_name(ctx: Any, param: Any, incomplete: str) -> list[str]:
    """click ``shell_complete`` callback: worker names (and addresses) matching ``incomplete``.

    The scheduler and TLS files are the command's own options when they were typed
    before NAME (``--scheduler``, ``--scheduler-file``, ``--tls-*``), else dask's
    config (``scheduler-address`` / ``DASK_SCHEDULER_ADDRESS``,
    ``distributed.comm.tls.*``). Returns [] silently on any failure.
    """
    import asyncio  # here, not at the top: `--help` must not pay for asyncio

    try:
        from dask_cli.debug.client.settings import ClientSettings

        params = getattr(ctx, "params", None) or {}
        known = ClientSettings.__dataclass_fields__
        settings = ClientSettings(**{k: v for k, v in params.items() if k in known})
        settings.timeout = None
        names, addresses = asyncio.run(
            worker_names(settings.scheduler_address(), NAME_COMPLETION_TIMEOUT, settings.security())
        )
    except Exception:  # completion must never break the user's shell
        return []
    candidates = addresses if "://" in incomplete else names
    return sorted(c for c in candidates if c.startswith(incomplete))


async def worker_names(
    address: str, timeout: float, security: Any = None
) -> tuple[list[str], list[str]]:
    """(names, addresses) of the workers the scheduler at ``address`` knows now.

    Uses distributed's own ``identity`` handler over its comm layer (TLS from
    ``security``, default: dask's config), so it works on any cluster, with or
    without the dask-cli plugins.
    """
    import asyncio

    from distributed.core import rpc
    from distributed.security import Security

    connection_args = (security or Security()).get_connection_args("client")

    async def ask() -> dict:
        async with rpc(address, timeout=timeout, connection_args=connection_args) as scheduler:
            return await scheduler.identity()

    identity = await asyncio.wait_for(ask(), timeout)
    workers = identity.get("workers", {}) or {}
    names = sorted({str(info.get("name", addr)) for addr, info in workers.items()})
    return names, sorted(workers)
