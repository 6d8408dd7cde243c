"""How the client reaches a cluster: scheduler address, TLS files, timeout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ClientSettings:
    """What ``--scheduler``, ``--scheduler-file``, ``--cluster``, ``--tls-*`` and ``--timeout`` say.

    Unset fields fall back to dask's configuration (``scheduler-address``,
    ``distributed.comm.tls.*``, ``cli.client.timeout``).
    """

    scheduler: str | None = None
    scheduler_file: str | None = None
    cluster: str | None = None  # a named cluster of `dask cluster`
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    timeout: float | None = None

    def scheduler_address(self) -> str:
        from dask_cli.config import scheduler_address

        if self.cluster and not (self.scheduler or self.scheduler_file):
            from dask_cli.clusters import scheduler_address_for

            return scheduler_address_for(self.cluster)
        return scheduler_address(self.scheduler, self.scheduler_file)

    def has_scheduler(self) -> bool:
        """Whether any scheduler address is given or configured."""
        import dask.config

        return bool(
            self.scheduler
            or self.scheduler_file
            or self.cluster
            or dask.config.get("scheduler-address", None)
        )

    def security(self) -> Any:
        """distributed's ``Security``: from the TLS flags, else from dask config."""
        from distributed import Security

        if self.tls_ca_file or self.tls_cert or self.tls_key:
            return Security(
                tls_ca_file=self.tls_ca_file,
                tls_client_cert=self.tls_cert,
                tls_client_key=self.tls_key,
                require_encryption=True,
            )
        return Security()

    def connect_timeout(self) -> float:
        """Seconds to wait for a connection or a resolution (``--timeout``)."""
        if self.timeout is not None:
            return float(self.timeout)
        from dask_cli import config

        return config.duration("client.timeout", "10s") or 10.0
