"""``dask scheduler start``: distributed's ``dask scheduler``, plus its shell service."""

from distributed.cli.dask_scheduler import main as distributed_scheduler

from dask_cli.commands.debug_options import (
    SHELL_OPTIONS,
    PreloadTarget,
    wrap_with_debug_options,
)

start = wrap_with_debug_options(
    distributed_scheduler,
    SHELL_OPTIONS,
    preload_targets=(PreloadTarget("preload", "preload_argv", "distributed.scheduler"),),
    help_text="Launch a Dask scheduler.\n\n"
    "Every option of distributed's `dask scheduler`, plus the dask-cli scheduler "
    "plugin: worker names for `dask worker shell`, and `dask scheduler shell`.",
)
