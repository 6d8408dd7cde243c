"""One asyncssh connection per host, and every way it can fail as one line and a hint.

asyncssh reads ``~/.ssh/config`` (Host aliases, HostName, User, Port, IdentityFile,
ConnectTimeout, ServerAliveInterval, ProxyJump, ...) the way OpenSSH does; settings
given on the command line win over it, and settings left out are not passed at all,
so the config file still decides them.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from dask_cli.errors import DaskCliError
from dask_cli.ssh.plan import SSHSettings

CONNECT_TIMEOUT = 15.0  # when ~/.ssh/config sets no ConnectTimeout
KEEPALIVE_INTERVAL = 30.0  # when it sets no ServerAliveInterval: idle clusters stay connected
_DEFAULT_KEY_FILES = ("id_ed25519_sk", "id_ecdsa_sk", "id_ed25519", "id_ecdsa", "id_rsa", "id_dsa")


class SSHFailure(DaskCliError):
    """A host could not be reached, refused us, or could not run what we asked."""


@dataclass
class HostConnection:
    """An open connection to ``host`` (as the user named it)."""

    host: str
    hostname: str  # what it resolves to: HostName from ~/.ssh/config, else ``host``
    connection: asyncssh.SSHClientConnection

    def close(self) -> None:
        self.connection.close()


def _options(host: str, settings: SSHSettings) -> asyncssh.SSHClientConnectionOptions:
    username = settings.username
    if "@" in host:  # user@host, as ssh takes it
        username, host = host.rsplit("@", 1)
    # asyncssh.connect reads ~/.ssh/config by itself, a bare options object does not.
    config = Path("~", ".ssh", "config").expanduser()
    kwargs: dict[str, Any] = {"host": host, "config": [str(config)] if config.is_file() else []}
    if username is not None:
        kwargs["username"] = username
    if settings.port is not None:
        kwargs["port"] = settings.port
    if settings.private_key is not None:
        kwargs["client_keys"] = [settings.private_key]
    if settings.insecure:
        kwargs["known_hosts"] = None
    elif settings.known_hosts is not None:
        kwargs["known_hosts"] = settings.known_hosts
    try:
        options = asyncssh.SSHClientConnectionOptions(**kwargs)
        extra = {}
        if options.connect_timeout is None:
            extra["connect_timeout"] = CONNECT_TIMEOUT
        if options.config.get("ServerAliveInterval") is None:
            extra["keepalive_interval"] = KEEPALIVE_INTERVAL
        return asyncssh.SSHClientConnectionOptions(options, **extra) if extra else options
    except (OSError, asyncssh.KeyImportError, ValueError) as exc:
        if settings.private_key is not None:
            raise SSHFailure(
                f"cannot use the private key {settings.private_key}: {_reason(exc)}",
                hint="Give a readable, unencrypted private key with --ssh-private-key.",
            ) from None
        raise SSHFailure(f"{host}: bad SSH settings: {_reason(exc)}") from None


async def connect(host: str, settings: SSHSettings) -> HostConnection:
    """Connect and log in to ``host``; raise :class:`SSHFailure` with what went wrong."""
    options = _options(host, settings)
    where = f"{options.host}:{options.port}"
    timeout = options.connect_timeout or CONNECT_TIMEOUT
    try:
        # asyncssh's connect_timeout bounds it; wait_for is the backstop for a proxy.
        connection = await asyncio.wait_for(
            asyncssh.connect(options.host, options=options), timeout + 5
        )
    except asyncssh.PermissionDenied:
        raise SSHFailure(
            f"{options.username}@{where}: the server refused the login "
            f"({_keys_tried(options, settings)})",
            hint="Give the right key with --ssh-private-key FILE (or IdentityFile in "
            "~/.ssh/config) and the user with --ssh-username, or add the key's .pub to "
            f"~/.ssh/authorized_keys of {options.username} on {options.host}.",
        ) from None
    except asyncssh.HostKeyNotVerifiable:
        raise _host_key_failure(options) from None
    except ConnectionRefusedError:
        raise SSHFailure(
            f"{where}: connection refused: no SSH server listens there",
            hint="Check the host name and --ssh-port (or Port in ~/.ssh/config).",
        ) from None
    except socket.gaierror as exc:
        raise SSHFailure(
            f"{options.host}: unknown host ({exc.strerror})",
            hint="Check the name, or add a Host entry with its HostName to ~/.ssh/config.",
        ) from None
    except (asyncio.TimeoutError, TimeoutError):
        raise SSHFailure(
            f"{where}: no answer within {timeout:g} s (host down or unreachable)",
            hint="Check that the host is up and reachable; ConnectTimeout in "
            "~/.ssh/config sets the wait.",
        ) from None
    except OSError as exc:
        raise SSHFailure(f"{where}: cannot connect: {_reason(exc)}") from None
    except asyncssh.Error as exc:
        raise SSHFailure(f"{where}: SSH failed: {exc.reason}") from None
    return HostConnection(host, options.host, connection)


def _reason(exc: BaseException) -> str:
    return (
        getattr(exc, "strerror", None)
        or getattr(exc, "reason", None)
        or str(exc)
        or (type(exc).__name__)
    )


def _keys_tried(options: asyncssh.SSHClientConnectionOptions, settings: SSHSettings) -> str:
    if settings.private_key is not None:
        keys = [settings.private_key]
    else:
        keys = [str(Path(k).expanduser()) for k in options.config.get("IdentityFile", ()) or ()]
        if not keys:
            ssh_dir = Path("~", ".ssh").expanduser()
            keys = [str(ssh_dir / n) for n in _DEFAULT_KEY_FILES if (ssh_dir / n).exists()]
    if not keys and not options.agent_path:
        return "no key to try: none given, none in ~/.ssh, no ssh-agent"
    tried = "key " + ", ".join(keys) if len(keys) == 1 else "keys " + ", ".join(keys)
    if options.agent_path:
        tried = f"{tried} and the keys of ssh-agent" if keys else "the keys of ssh-agent"
    return f"tried {tried}"


def _known_hosts_files(options: asyncssh.SSHClientConnectionOptions) -> list[str]:
    known = options.known_hosts
    if isinstance(known, str):
        return [known]
    if isinstance(known, (list, tuple)) and all(isinstance(k, str) for k in known) and known:
        return list(known)
    return [str(Path("~", ".ssh", "known_hosts").expanduser())]


def _host_key_failure(options: asyncssh.SSHClientConnectionOptions) -> SSHFailure:
    """Unknown (no key for the host in the files) or changed (a key, but another one)."""
    files = [f for f in _known_hosts_files(options) if os.path.exists(f)]
    shown = ", ".join(_known_hosts_files(options))
    port = options.port if options.port != 22 else None
    keys_known = False
    if files:
        try:
            found = asyncssh.read_known_hosts(files).match(options.host, "", port)
            keys_known = bool(found[0] or found[1])
        except (OSError, ValueError):
            pass
    name = f"[{options.host}]:{options.port}" if port else options.host
    if keys_known:
        return SSHFailure(
            f"{name}: the host key CHANGED: it is not the one in {shown}",
            hint="If the host was reinstalled, remove the old key with `ssh-keygen -R "
            f"'{name}'` and check the new one; otherwise someone may be intercepting "
            "the connection.",
        )
    return SSHFailure(
        f"{name}: unknown host key (not in {shown})",
        hint="Check it and add it by logging in once with ssh, or pass --known-hosts FILE; "
        "--insecure skips the check.",
    )
