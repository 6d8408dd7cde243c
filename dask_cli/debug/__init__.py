"""The debugging toolkit: shell service and keep-alive inside Dask servers, and the
client that talks to them.

As a preload module (``--preload dask_cli.debug``, or ``--preload-nanny``) it
installs the right plugin into whatever server loads it: a worker, a nanny or a
scheduler. Importing this package is cheap; the service code is imported by
``dask_setup`` only.
"""


def dask_setup(server):  # noqa: ANN001, ANN201 - distributed's preload hook
    """distributed's preload hook: install the dask-cli plugin for ``server``."""
    from dask_cli.debug.service.install import install

    return install(server)
