"""Opening a comm to a scheduler, worker or shell service, and saying why it failed.

distributed's ``comm.connect`` retries a refused connection until its timeout
(10 s by default) and then reports a timeout; it reads the handshake without any
bound, so a frozen peer (SIGSTOP, ``docker pause``), whose kernel still accepts
connections, hangs it. :func:`connect_comm` makes one attempt, bounded as a whole,
and classifies a failure where it happens:

=================  ==========================================  ====================
what happened      example                                     when it is reported
=================  ==========================================  ====================
refused            nothing listens on that port                at once
unreachable        unknown host, no route to the host          at once
no answer          SYN dropped by a firewall                   after ``timeout``
silent             accepted, then nothing (a frozen process)   after ``timeout``
TLS refused        missing or untrusted certificates           at once
wrong protocol     ``tls://`` to a plain server, or the        at once
                   reverse, or not a Dask server at all
=================  ==========================================  ====================

Each becomes one :class:`ConnectionFailed` with the address and a hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import getpass
import os
import socket
import ssl
from typing import Any

from dask_cli.errors import ConnectionFailed

TLS_HINT = "Pass --tls-ca-file, --tls-cert and --tls-key signed by the cluster's CA."
TIMEOUT_HINT = "Raise the wait with --timeout if it is only slow."
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def _address_hint(what: str) -> str:
    if what == "scheduler":
        return (
            "Check the address: the scheduler prints it at start-up ('Scheduler at: ...'), "
            "or pass --scheduler-file FILE."
        )
    return "Check the address: `dask worker list` shows every worker's address."


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def classify(
    address: str,
    exc: BaseException,
    timeout: float,
    what: str = "worker",
    stage: str = "connect",
) -> ConnectionFailed:
    """The one-line error for ``exc``, raised while connecting to ``address``.

    ``stage`` is ``connect`` (opening the socket, TLS included) or ``handshake``
    (the peer accepted; we wait for its first message)."""
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain).lower()
    root = chain[-1]
    detail = str(root) or type(root).__name__
    if any(isinstance(e, ssl.SSLError) for e in chain) or "ssl_context" in text:
        if "ssl_context" in text:
            return ConnectionFailed(
                f"{address} uses TLS and no certificates were given", hint=TLS_HINT
            )
        if "wrong_version_number" in text or "wrong version number" in text:
            return ConnectionFailed(
                f"{address} does not speak TLS (wrong protocol)",
                hint="Use its tcp:// address, or check the port.",
            )
        return ConnectionFailed(f"TLS connection to {address} refused: {detail}", hint=TLS_HINT)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return ConnectionFailed(
            f"Nothing listens at {address} (connection refused)", hint=_address_hint(what)
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return ConnectionFailed(
            f"Cannot resolve the host of {address}: {detail}", hint=_address_hint(what)
        )
    if any(isinstance(e, OSError) and e.errno in _UNREACHABLE for e in chain):
        return ConnectionFailed(
            f"{address} is unreachable: {detail}",
            hint="Check the host name and the network path (firewall, VPN).",
        )
    timed_out = any(isinstance(e, (asyncio.TimeoutError, TimeoutError)) for e in chain)
    if timed_out and stage == "connect":
        return ConnectionFailed(
            f"No answer from {address} within {timeout:g} s (unreachable, or filtered "
            "by a firewall)",
            hint=f"Check the address and the network path. {TIMEOUT_HINT}",
        )
    if timed_out:
        return ConnectionFailed(
            f"{address} accepted the connection but sent nothing for {timeout:g} s "
            f"(is the {what} frozen?)",
            hint=f"A paused or stuck process (SIGSTOP, docker pause) does this. {TIMEOUT_HINT}",
        )
    if stage == "handshake":
        return ConnectionFailed(
            f"{address} closed the connection during the handshake (wrong protocol: "
            "it may require TLS, or it is not a Dask server)",
            hint="For a TLS cluster use its tls:// address with --tls-ca-file, --tls-cert "
            "and --tls-key.",
        )
    return ConnectionFailed(f"Cannot connect to {address}: {detail}", hint=_address_hint(what))


async def connect_comm(
    address: str, security: Any = None, timeout: float = 10, what: str = "worker"
) -> Any:
    """An open, handshaken ``distributed`` comm to ``address``, in one attempt bounded by
    ``timeout`` as a whole; any failure is a classified :class:`ConnectionFailed`.

    ``security`` (distributed's ``Security``) gives the TLS context; ``what``
    (``scheduler``, ``worker``, ``process``) is who we say we tried to reach."""
    from distributed.comm import registry
    from distributed.comm.addressing import parse_address

    args = security.get_connection_args("client") if security is not None else {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        scheme, loc = parse_address(address)
        connector = registry.get_backend(scheme).get_connector()
    except ValueError as exc:
        raise ConnectionFailed(f"Bad address {address!r}: {exc}") from None
    try:
        comm = await asyncio.wait_for(connector.connect(loc, deserialize=False, **args), timeout)
    except Exception as exc:
        raise classify(address, exc, timeout, what, "connect") from None
    try:
        local_info = comm.handshake_info()
        await comm.write(local_info)
        remote_info = await asyncio.wait_for(comm.read(), max(deadline - loop.time(), 0.001))
        if not isinstance(remote_info, dict):
            raise ConnectionFailed(f"{address} does not speak Dask's protocol (wrong protocol)")
    except BaseException as exc:
        comm.abort()
        if isinstance(exc, ConnectionFailed):
            raise
        if not isinstance(exc, Exception):
            raise
        raise classify(address, exc, timeout, what, "handshake") from None
    # What distributed's ``comm.connect`` records after its handshake.
    comm.remote_info = {**remote_info, "address": comm.peer_address}
    comm.local_info = {**local_info, "address": comm.local_address}
    comm.handshake_options = comm.handshake_configuration(comm.local_info, comm.remote_info)
    return comm


async def close_comm(comm: Any, wait: float = 2) -> None:
    """Close ``comm``, aborting it when the peer does not take our last bytes in time
    (distributed's close first flushes pending writes: a frozen peer holds it forever)."""
    try:
        await asyncio.wait_for(comm.close(), wait)
    except Exception:
        with contextlib.suppress(Exception):
            comm.abort()


def whoami() -> dict[str, Any]:
    """Who is connecting, for the target's audit log."""
    user, host = _user_and_host()
    return {"user": user, "host": host, "pid": os.getpid()}


@functools.cache
def _user_and_host() -> tuple[str, str]:
    """Asked once per process: a quarter of a millisecond per connection otherwise."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "?"
    return user, socket.gethostname()
