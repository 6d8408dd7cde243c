"""How a feature plugs into the shell service: the core's one extension point.

The core of the service — :mod:`~dask_cli.debug.service.server` (the listener and
its requests), :mod:`~dask_cli.debug.service.session` (namespace and evaluation),
:mod:`~dask_cli.debug.service.plugin` (the plugins that start it and the worker
record the scheduler keeps) — knows nothing of keep-alive, post-mortem, the
nanny's crash records, breakpoints or jobs. Each of those is a *feature*: a
subclass of :class:`ShellFeature` that overrides the hooks it needs (every hook
adds nothing by default) and registers itself on the server it is installed in::

    from dask_cli.debug import protocol
    from dask_cli.debug.service import features


    class Breakpoints(features.ShellFeature):
        name = "breakpoints"

        def __init__(self, worker):
            self.worker = worker
            self.table = {}

        def requests(self):
            return {protocol.SetBreakpoint: self.set_breakpoint}

        def set_breakpoint(self, request, session):
            self.table[request.where] = request.condition
            return sorted(self.table)  # the ``data`` of the ``result``

        def helpers(self):
            return {"breakpoints": lambda session: self.table}


    def install(worker):  # called by dask_cli.debug.service.install
        features.register(worker, Breakpoints(worker))

To ship a feature: put its messages in :mod:`dask_cli.debug.protocol` (both ends
import them from there), its logic in its own module under ``service/``, and one
call to its ``install`` in :mod:`dask_cli.debug.service.install`, which is the
only module that imports every feature. A feature may import the core; the core
never imports a feature (``tests/test_imports.py`` checks both).

Features are registered per server (a process may hold a scheduler and several
in-process workers), at any time: the service asks the registry when a request
arrives, a session opens or a record is published, so the order of installation
does not matter. Registration is idempotent by ``name``.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dask_cli.debug import protocol

if TYPE_CHECKING:
    from dask_cli.debug.service.session import ShellSession

logger = logging.getLogger("dask_cli.debug.service")

#: Answers one request: ``handler(request, session)`` returns the ``data`` of the
#: ``result`` (msgpack-serialisable), or an awaitable of it.
RequestHandler = Callable[[Any, "ShellSession"], Any]
#: Makes one namespace value for a new session: ``factory(session)``.
HelperFactory = Callable[["ShellSession"], Any]


class ShellFeature:
    """Base class of a feature. Override the hooks you need; each defaults to nothing.

    Hooks are called by the core, never by other features, and must not raise
    for ordinary states (a failing hook is logged and skipped: the shell stays up).
    """

    #: Unique on a server; a second feature registered with the same name is ignored.
    name: ClassVar[str] = ""

    def requests(self) -> Mapping[type[protocol.Request], RequestHandler]:
        """The shell requests this feature answers: protocol message class → handler.

        The message class (a :class:`protocol.Request` listed in
        ``protocol.CLIENT_MESSAGES``) says which ``op`` is routed here; the
        handler gets the parsed, validated message and the :class:`ShellSession`
        it arrived on (``session.server`` is the Worker/Scheduler/Nanny). It runs
        on the shell service's own thread and event loop, so it answers while
        the server's loop is blocked: touch the server's state only through
        ``server.loop.add_callback`` (or ``asyncio.run_coroutine_threadsafe`` on
        ``session.server_loop``). Its return value (or, for an awaitable, what
        it resolves to) is the result's ``data``. Raise
        :class:`dask_cli.errors.DaskCliError` for a refusal the user should read
        as is; it reaches the client in the result's ``error`` field.
        Two features answering the same message class on one server is an error
        at registration.
        """
        return {}

    def helpers(self) -> Mapping[str, HelperFactory]:
        """Names this feature adds to every shell session's namespace: name → factory.

        Each factory is called once per new session with that session (on the
        service thread) and returns the value bound to the name, typically a
        function closed over the feature's state (``failed()``, ``pm(key)``) or
        a live object (``crash``). The names are listed in the welcome banner.
        A core name (``worker``, ``tasks``, ``logs`` ...) is never replaced.
        """
        return {}

    def record_fields(self) -> Mapping[str, Any]:
        """Fields this feature sets in the server's record, as they are now.

        The record (:class:`protocol.WorkerRecord`) is what a client sees in the
        ``welcome`` and after a request, and what a worker publishes in the
        scheduler's metadata for ``dask worker list``. Return only the fields
        you own (e.g. ``{"keepalive": True}``, or ``status`` =
        ``protocol.KEPT_ALIVE`` with its reason). Called from any thread, often:
        read state, do no I/O. When your fields change, call
        :func:`dask_cli.debug.service.plugin.publish_record` to republish.
        """
        return {}

    def handlers(self) -> Mapping[str, Callable[..., Any]]:
        """distributed comm handlers this feature adds to its server: name → handler.

        For messages between Dask processes that do not go through the shell
        (a worker telling its nanny, a client asking the scheduler for a
        snapshot). Added to ``server.handlers`` at registration and removed by
        :func:`unregister`; they run on the server's own event loop, as any
        distributed handler. Name them ``dask_cli_*`` in :mod:`protocol`. For
        scheduler events (``add_worker``, ``transition``), also subclass
        distributed's ``SchedulerPlugin``: the core does not relay them.
        """
        return {}

    def close(self) -> None:
        """Called once by :func:`unregister` (server teardown): release what you hold."""


_lock = threading.Lock()
_registries: weakref.WeakKeyDictionary[Any, dict[str, ShellFeature]] = weakref.WeakKeyDictionary()

F = TypeVar("F", bound=ShellFeature)


def register(server: Any, feature: F) -> F:
    """Register ``feature`` on ``server``; return the feature registered under its name
    (``feature`` itself, or the one registered before, which is kept)."""
    if not feature.name:
        raise ValueError(f"{type(feature).__name__} has no name")
    with _lock:
        registered = _registries.setdefault(server, {})
        if feature.name in registered:
            return registered[feature.name]  # type: ignore[return-value]
        taken = {cls: f.name for f in registered.values() for cls in f.requests()}
        for cls in feature.requests():
            if cls in taken:
                raise ValueError(
                    f"{feature.name!r} and {taken[cls]!r} both answer {cls.op!r} requests"
                )
        registered[feature.name] = feature
    handlers = getattr(server, "handlers", None)
    if handlers is not None:
        handlers.update(feature.handlers())
    return feature


def unregister(server: Any, name: str) -> None:
    """Remove the feature ``name`` from ``server`` (its handlers too) and close it."""
    with _lock:
        feature = _registries.get(server, {}).pop(name, None)
    if feature is None:
        return
    handlers = getattr(server, "handlers", None)
    if handlers is not None:
        for handler_name in feature.handlers():
            handlers.pop(handler_name, None)
    _call(feature, "close", feature.close)


def registered(server: Any) -> list[ShellFeature]:
    """The features of ``server``, in registration order."""
    with _lock:
        return list(_registries.get(server, {}).values())


def get(server: Any, name: str) -> ShellFeature | None:
    with _lock:
        return _registries.get(server, {}).get(name)


# --- what the core asks -------------------------------------------------------


def request_handler(server: Any, message: type[protocol.Request]) -> RequestHandler | None:
    """The handler a feature of ``server`` registered for ``message``, if any."""
    for feature in registered(server):
        handler = feature.requests().get(message)
        if handler is not None:
            return handler
    return None


def session_helpers(server: Any, session: ShellSession) -> dict[str, Any]:
    """Every feature's namespace names for a new ``session``."""
    names: dict[str, Any] = {}
    for feature in registered(server):
        factories = _call(feature, "helpers", feature.helpers)
        for name, factory in (factories if factories is not _FAILED else {}).items():
            value = _call(feature, f"helper {name!r}", factory, session)
            if value is not _FAILED:
                names[name] = value
    return names


def record_fields(server: Any) -> dict[str, Any]:
    """Every feature's record fields for ``server``, later features winning."""
    fields: dict[str, Any] = {}
    for feature in registered(server):
        found = _call(feature, "record_fields", feature.record_fields)
        fields.update(found if found is not _FAILED else {})
    return fields


_FAILED = object()


def _call(feature: ShellFeature, what: str, function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or ``_FAILED`` (logged): a feature never breaks the core."""
    try:
        return function(*args)
    except Exception:
        logger.exception("dask-cli shell: feature %r failed in %s", feature.name, what)
        return _FAILED
