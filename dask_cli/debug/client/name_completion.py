"""Live worker names for the shell's Tab completion of ``dask worker shell NAME``.

click calls ``complete_worker_name`` when the user presses Tab in bash/zsh/fish
(with ``_DASK_COMPLETE`` set). It asks the scheduler for its workers (the same
``list_workers`` as ``dask worker list``) and returns the names that start with
what was typed. A completion must never print an error
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
        from dask_cli.debug.client.resolve import list_workers
        from dask_cli.debug.client.settings import ClientSettings

        params = getattr(ctx, "params", None) or {}
        known = ClientSettings.__dataclass_fields__
        settings = ClientSettings(**{k: v for k, v in params.items() if k in known})
        settings.timeout = NAME_COMPLETION_TIMEOUT
        records = asyncio.run(
            asyncio.wait_for(
                list_workers(settings, NAME_COMPLETION_TIMEOUT), NAME_COMPLETION_TIMEOUT
            )
        )
    except Exception:  # completion must never break the user's shell
        return []
    if "://" in incomplete:
        candidates = {r.address for r in records}
    else:
        candidates = {r.name for r in records}
    return sorted(c for c in candidates if c.startswith(incomplete))
