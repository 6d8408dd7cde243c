"""click parameter types for what users type most: addresses and durations.

A bad value is a usage error (exit 2) that names the option, the same everywhere
the option exists. Parsing is distributed's and dask's own (``parse_address``,
``parse_timedelta``), imported inside ``convert``: declaring an option must not
import distributed, or ``--help`` would pay for it.
"""

from __future__ import annotations

from typing import Any

import click


class AddressType(click.ParamType):
    """A server address such as ``tcp://10.0.0.5:8786`` or ``10.0.0.5:8786`` (tcp assumed).

    Converted to the full form with its protocol, checked against distributed's
    known protocols, with a port for ``tcp``/``tls``."""

    name = "address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        problem = address_problem(str(value))
        if problem is not None:
            self.fail(f"{value!r} is not an address: {problem}", param, ctx)
        return normalize_address(str(value))


class TargetType(click.ParamType):
    """A worker's name, an address or a prefix: only what looks like a full address
    (it has ``://``) is checked as one."""

    name = "name|address"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if "://" in text:
            problem = address_problem(text)
            if problem is not None:
                self.fail(f"{value!r} is not an address: {problem}", param, ctx)
        return text


class DurationType(click.ParamType):
    """Seconds, or a dask time string (``5s``, ``500ms``, ``'10 minutes'``); returns seconds."""

    name = "duration"

    def __init__(self, positive: bool = True):
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        seconds = parse_duration(value)
        if seconds is None:
            self.fail(
                f"{value!r} is not a duration: give seconds or a time string like "
                "5s, 500ms or '10 minutes'",
                param,
                ctx,
            )
        if self.positive and seconds <= 0:
            self.fail(f"{value!r} must be longer than 0 s", param, ctx)
        return seconds


def parse_duration(value: Any) -> float | None:
    """``value`` in seconds (dask's ``parse_timedelta``, seconds by default), or None
    when it is not a duration."""
    from dask.utils import parse_timedelta

    try:
        seconds = parse_timedelta(value, default="seconds")
    except (KeyError, ValueError, TypeError):
        return None
    return None if seconds is None else float(seconds)


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a usable server address, or None when it is."""
    from distributed.comm import registry
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address, strict=False)
    except ValueError as exc:
        return str(exc)
    try:
        registry.get_backend(scheme)
    except ValueError:
        known = ", ".join(sorted(registry.backends))
        return f"unknown protocol {scheme!r} (known: {known})"
    if scheme in ("tcp", "tls", "ws", "wss"):
        if not location:
            return "no host and port"
        if ":" not in location or location.endswith("]"):
            return f"no port in {location!r}"
        host, _, port = location.rpartition(":")
        if not host or host == "[]":
            return f"no host in {location!r}"
        if not port.isdigit():
            return f"port {port!r} is not a number" if port else "no port"
        if not 0 < int(port) < 65536:
            return f"port {port} is out of range"
        try:
            parse_host_port(location)
        except ValueError as exc:
            return str(exc)
    return None


def normalize_address(address: str) -> str:
    """``address`` with its protocol (``tcp://`` when none is given)."""
    return address if "://" in address else f"tcp://{address}"


ADDRESS = AddressType()
TARGET = TargetType()
DURATION = DurationType()
