"""A plugin whose import fails, as dask-ctl's does against distributed 2026.5+."""

raise ImportError("cannot import name 'install_signal_handlers' from 'distributed.cli.utils'")
