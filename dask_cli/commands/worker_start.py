"""``dask worker start``: distributed's ``dask worker``, plus shell and keep-alive options."""

from distributed.cli.dask_worker import main as distributed_worker

from dask_cli.commands.debug_options import (
    KEEPALIVE_OPTIONS,
    SHELL_OPTIONS,
    PreloadTarget,
    wrap_with_debug_options,
)

start = wrap_with_debug_options(
    distributed_worker,
    [*SHELL_OPTIONS, *KEEPALIVE_OPTIONS],
    preload_targets=(
        PreloadTarget("preload", "preload_argv", "distributed.worker"),
        # distributed's command hands the nanny a tuple, so the nanny never reads
        # distributed.nanny.preload from config: nothing to fall back to here either.
        PreloadTarget("preload_nanny"),
    ),
    help_text="Launch a Dask worker attached to an existing scheduler.\n\n"
    "Every option of distributed's `dask worker`, plus a shell service in each "
    "worker (`dask worker shell NAME`) and `--keepalive` for post-mortem.",
)
