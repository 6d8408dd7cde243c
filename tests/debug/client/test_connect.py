"""Connection failures classified where they happen (``dask_cli.debug.client.connect``),
against real listeners on 127.0.0.1: a closed port, a socket that accepts and says
nothing, a plain and a TLS scheduler."""

from __future__ import annotations

import contextlib
import socket
import time

import pytest
from distributed import Scheduler
from distributed.security import Security

from dask_cli.debug.client.connect import connect_comm
from dask_cli.errors import ConnectionFailed

pytestmark = pytest.mark.timeout(60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def silent_listener():
    """A port whose kernel accepts connections that nobody ever reads (a frozen peer)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"tcp://127.0.0.1:{s.getsockname()[1]}"


async def failure(address: str, **kwargs) -> tuple[ConnectionFailed, float]:
    start = time.monotonic()
    with pytest.raises(ConnectionFailed) as info:
        await connect_comm(address, **kwargs)
    return info.value, time.monotonic() - start


async def test_refused_fails_at_once_whatever_the_timeout():
    address = f"tcp://127.0.0.1:{free_port()}"
    error, took = await failure(address, timeout=30, what="scheduler")
    assert took < 1.0
    assert error.message == f"Nothing listens at {address} (connection refused)"
    assert "Scheduler at:" in error.hint


async def test_unknown_host_is_unreachable_at_once():
    error, took = await failure("tcp://nonexistent.invalid:8786", timeout=30)
    assert took < 5
    assert "Cannot resolve the host of tcp://nonexistent.invalid:8786" in error.message


async def test_silent_peer_is_a_timeout_bounded_by_timeout():
    with silent_listener() as address:
        error, took = await failure(address, timeout=0.5)
    assert 0.4 < took < 3
    assert error.message == (
        f"{address} accepted the connection but sent nothing for 0.5 s (is the worker frozen?)"
    )
    assert "--timeout" in error.hint


async def test_tls_and_wrong_protocol(tls_files):
    security = Security(
        tls_ca_file=tls_files.ca_file,
        tls_client_cert=tls_files.cert,
        tls_client_key=tls_files.key,
        tls_scheduler_cert=tls_files.cert,
        tls_scheduler_key=tls_files.key,
        require_encryption=True,
    )
    async with (
        Scheduler(
            protocol="tls", host="127.0.0.1", port=0, dashboard_address=":0", security=security
        ) as tls,
        Scheduler(host="127.0.0.1", port=0, dashboard_address=":0") as plain,
    ):
        comm = await connect_comm(tls.address, security, timeout=5)
        comm.abort()
        error, _ = await failure(tls.address, timeout=5)
        assert error.message == f"{tls.address} uses TLS and no certificates were given"
        assert "--tls-ca-file" in error.hint
        as_tcp = tls.address.replace("tls://", "tcp://")
        error, took = await failure(as_tcp, timeout=5)
        assert "wrong protocol" in error.message and "tls://" in error.hint
        assert took < 5
        as_tls = plain.address.replace("tcp://", "tls://")
        error, _ = await failure(as_tls, security=security, timeout=5)
        assert error.message == f"{as_tls} does not speak TLS (wrong protocol)"
