"""dask-cli: one ``dask`` command for Dask's tools, and a way into a misbehaving worker.

Importing this package must stay cheap: ``dask --help`` loads it, and it must not
pull in distributed, ptpython or asyncssh.
"""

__version__ = "0.1.0"
