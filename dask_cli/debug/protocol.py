"""The messages of the dask-cli shell: the one definition both ends use.

Messages are plain dicts carried by distributed's comm layer (``distributed.comm``
``listen``/``connect``, TCP or TLS), so they are msgpack-serialisable: str, int,
float, bool, None, lists and dicts only.

A connection opens with ``hello`` → ``welcome``. After that the client sends
requests, each with an integer ``id`` unique on that connection, and the service
answers every request with exactly one ``result`` carrying the same ``id``.
While an ``eval`` runs the service may also send, for that ``id``:

- ``output``: text the code wrote to stdout/stderr, as it is produced;
- ``input``: the code reads a line (``input()``, pdb): the client answers with
  ``input_reply`` (``text`` None means end of file).

and the client may send ``interrupt`` for that ``id`` (Ctrl-C). Other requests
(``complete``, ``stacks``, ...) may be sent while an ``eval`` runs; their results
can arrive in any order relative to its output.

``ping`` is the liveness check: the service answers it with an ``ok`` ``result`` at
once, from its own thread, never queued behind an ``eval``. A client waiting for a
result pings after a while without hearing anything; a peer that answers nothing at
all (a frozen process) is dead.

A message the service cannot parse (unknown op, missing field, wrong type, source
longer than ``MAX_SOURCE_CHARS``) gets an ``error`` message (with the request's
``id`` when one could be read) and the connection stays open; a connection that
sends something that is not a dict gets an ``error`` and is closed, as is one whose
first message is not a valid ``hello``.

A request the service understood but could not carry out gets a ``result`` with
status ``error`` and the reason in ``error`` (and ``hint``); ``traceback`` is only
ever the traceback of the user's code, formatted on the target.

Besides the shell's messages this module owns what else crosses a process
boundary for dask-cli: the :class:`WorkerRecord` the scheduler keeps (and a
shell's ``welcome`` describes its target with), the nanny handler's
:class:`NannyKeepalive` message, the status words, and the shared limits.

To add a message: a dataclass below with its ``op``, listed in
``CLIENT_MESSAGES`` or ``SERVICE_MESSAGES``; annotate its fields with the types
``_check`` knows (str, int, float, bool, None, dict, list[...], Any, ``Literal``
and unions of them): ``parse`` checks every field. The service answers a new
request through a feature (``dask_cli.debug.service.features``).

Values of the ``list`` kind may arrive as tuples (msgpack without list decoding):
read them as sequences.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Literal, Union

PROTOCOL_VERSION = 1

# Largest source text or input line accepted by the service, in characters.
MAX_SOURCE_CHARS = 16 * 1024 * 1024
# Longest ``text`` of one ``output`` message: longer output comes in several.
MAX_OUTPUT_CHARS = 256 * 1024
# Most completions the service answers for one ``complete``.
MAX_COMPLETIONS = 200

# The handler name that, in ``distributed.worker.blocked-handlers`` (or
# ``distributed.scheduler.blocked-handlers``), turns the whole shell service off.
BLOCKED_HANDLER_NAME = "dask_cli_shell"

# Handler added to worker/scheduler/nanny servers: answers the shell address.
SHELL_ADDRESS_HANDLER = "dask_cli_shell_address"
# Scheduler handler added by the scheduler plugin: the worker registry.
WORKERS_HANDLER = "dask_cli_workers"
# Key prefix under which workers publish their shell record with set_metadata.
METADATA_KEY = "dask-cli"
# Nanny handler a worker calls with its keepalive switch and kept-alive state.
NANNY_KEEPALIVE_HANDLER = "dask_cli_keepalive"

# Record statuses of our own (the others are distributed's ``Status`` names).
KEPT_ALIVE = "kept-alive"  # failed, kept up for post-mortem: listed after leaving
CLOSED = "closed"  # a kept-alive worker that exited: listings drop it
# The close reason of a kept-alive worker (and its nanny) released by the user.
RELEASE_REASON = "dask-cli-keepalive-released"

# Tasks paused at breakpoint(): each worker publishes the list of its pauses in the
# scheduler's metadata under ``[METADATA_KEY, PAUSED_KEY, worker address]``, and logs
# one scheduler event per pause under ``BREAKPOINT_EVENT``.
PAUSED_KEY = "paused"
BREAKPOINT_EVENT = "dask-cli-breakpoint"

Stream = Literal["stdout", "stderr"]
EvalMode = Literal["auto", "exec"]
ResultStatus = Literal["ok", "error", "interrupted", "exit"]
TargetKind = Literal["worker", "scheduler", "nanny"]


class ProtocolError(ValueError):
    """A message that does not have the shape this module defines."""


@dataclass
class Message:
    """Base: ``op`` names the message; ``to_msg``/``from_msg`` convert to/from dicts."""

    op: ClassVar[str]

    def to_msg(self) -> dict[str, Any]:
        """The fields and ``op``: a plain copy, not ``dataclasses.asdict``, whose deep
        copy was a measurable part of a short request and of every output chunk (no
        field holds a dataclass; msgpack sends lists and dicts as they are)."""
        msg = {name: getattr(self, name) for name in _field_names(type(self))}
        msg["op"] = self.op
        return msg

    @classmethod
    def from_msg(cls, msg: dict[str, Any]) -> Message:
        kwargs = {}
        for f in fields(cls):
            if f.name in msg:
                kwargs[f.name] = msg[f.name]
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ProtocolError(f"'{cls.op}' message without '{f.name}'")
        instance = cls(**kwargs)
        instance.validate()
        return instance

    def validate(self) -> None:
        _validate(self, self.op)


@dataclass
class Request(Message):
    """A client→service message that gets exactly one ``Result``."""

    id: int


# --- client → service -------------------------------------------------------


@dataclass
class Hello(Message):
    op = "hello"
    version: int
    client: dict = field(default_factory=dict)  # user, host, pid: for the audit log


@dataclass
class Eval(Request):
    """Run ``source``. ``auto``: an expression's repr is shown (REPL input);
    ``exec``: run as a module body (scripts, ``-c``)."""

    op = "eval"
    source: str
    mode: EvalMode = "auto"
    filename: str = "<shell>"

    def validate(self) -> None:
        super().validate()
        if len(self.source) > MAX_SOURCE_CHARS:
            raise ProtocolError(f"source longer than {MAX_SOURCE_CHARS} characters")


@dataclass
class Interrupt(Message):
    """Ctrl-C: stop the eval with this ``id`` (no result of its own)."""

    op = "interrupt"
    id: int


@dataclass
class InputReply(Message):
    """The line the running code asked for with ``input``; None is end of file."""

    op = "input_reply"
    id: int
    text: str | None = None


@dataclass
class Complete(Request):
    """Completions for ``source`` with the cursor at character offset ``cursor``."""

    op = "complete"
    source: str
    cursor: int


@dataclass
class Stacks(Request):
    """Every thread's stack (works while the target's event loop is blocked)."""

    op = "stacks"


@dataclass
class Logs(Request):
    """The last ``n`` log lines of the target process."""

    op = "logs"
    n: int = 100


@dataclass
class Info(Request):
    """Refresh the ``WorkerRecord`` sent with ``welcome``."""

    op = "info"


@dataclass
class SetKeepalive(Request):
    """``dask worker keepalive NAME on|off``."""

    op = "keepalive"
    enabled: bool


@dataclass
class Release(Request):
    """``dask worker release NAME``: a kept-alive worker may exit now."""

    op = "release"


@dataclass
class Ping(Request):
    """Are you there? Answered at once with an empty ``ok`` result."""

    op = "ping"


@dataclass
class DebugComplete(Request):
    """Completions in the frame of the debugger this session attached (``debug(key)``):
    pdb's current frame, after ``up``/``down``."""

    op = "debug_complete"
    source: str
    cursor: int


@dataclass
class Bye(Message):
    """The client leaves; the service closes the session (the worker stays up)."""

    op = "bye"


# --- service → client -------------------------------------------------------


@dataclass
class WorkerRecord:
    """A worker (or the scheduler, or a nanny) as dask-cli describes it: what
    ``dask worker list`` shows, what ``dask worker shell NAME`` connects to, and
    the ``target`` of a shell's ``welcome``.

    A worker publishes it in the scheduler's metadata under
    ``[METADATA_KEY, "workers", address]``; the scheduler plugin answers the list
    (``WORKERS_HANDLER``) with them, adding what the scheduler itself knows
    (``nthreads``, ``memory_limit``, ``tasks``).
    """

    name: str
    address: str  # the worker's (or scheduler's) own address
    shell_address: str | None = None
    kind: TargetKind = "worker"
    status: str = "unknown"  # distributed's Status name, or KEPT_ALIVE / CLOSED
    pid: int | None = None
    host: str | None = None
    nthreads: int = 0
    memory_limit: int = 0
    tasks: int = 0
    keepalive: bool = False
    kept_alive_reason: str | None = None
    kept_alive_since: float | None = None  # time.time()

    def to_msg(self) -> dict[str, Any]:
        """A plain copy of the fields (``dataclasses.asdict`` deep-copies, which made
        listing 1,000 workers slow; every field is a str, number, bool or None)."""
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def from_msg(cls, msg: Any) -> WorkerRecord:
        """A record from a dict (unknown keys ignored; ``name`` defaults to the address)."""
        if not isinstance(msg, dict):
            raise ProtocolError(f"a worker record must be a dict, not {type(msg).__name__}")
        values = {k: msg[k] for k in _field_names(cls) if k in msg}
        values.setdefault("address", "")
        values["name"] = str(values.get("name", values["address"]))
        record = cls(**values)
        _validate(record, "worker record")
        return record


@dataclass
class NannyKeepalive:
    """Worker → its nanny, by the distributed handler ``NANNY_KEEPALIVE_HANDLER``
    (keyword arguments): the worker's keepalive switch, and its kept-alive state
    (``{"reason": str, "since": float}``) once it is kept alive."""

    enabled: bool
    kept_alive: dict | None = None

    def to_msg(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _field_names(type(self))}

    @classmethod
    def from_msg(cls, msg: dict[str, Any]) -> NannyKeepalive:
        if "enabled" not in msg:
            raise ProtocolError(f"'{NANNY_KEEPALIVE_HANDLER}' message without 'enabled'")
        message = cls(**{f.name: msg[f.name] for f in fields(cls) if f.name in msg})
        _validate(message, NANNY_KEEPALIVE_HANDLER)
        return message


@dataclass
class Welcome(Message):
    op = "welcome"
    version: int
    session: str
    target: dict  # WorkerRecord.to_msg()
    banner: str
    # What the session's namespace offers, for the client's banner ("tasks()", "data").
    helpers: list[str] = field(default_factory=list)


@dataclass
class Output(Message):
    op = "output"
    id: int
    stream: Stream
    text: str


@dataclass
class InputRequest(Message):
    op = "input"
    id: int
    prompt: str = ""


@dataclass
class Result(Message):
    """The end of request ``id``.

    ``status``: ``ok``; ``error``; ``interrupted``; ``exit`` (the code called
    ``exit()``: the client ends the session). On ``error``, ``traceback`` holds
    the traceback of the user's code (formatted on the target), or ``error``
    (with an optional ``hint``) says why the service could not do what was asked:
    show it as is. ``value`` is the repr of an expression (``auto`` mode),
    ``data`` the payload of non-eval requests (completions, stacks text, log
    lines, a ``WorkerRecord``). ``dropped``: characters of output the code printed
    that were never sent, because a Ctrl-C drops the output still waiting (clients
    say so with :func:`dropped_notice`). A field of the result rather than an
    output message of its own: right after a Ctrl-C, one message less for both ends.
    """

    op = "result"
    id: int
    status: ResultStatus = "ok"
    value: str | None = None
    traceback: str | None = None
    data: Any = None
    error: str | None = None
    hint: str | None = None
    dropped: int = 0


def dropped_notice(dropped: int) -> str:
    """What a client prints for ``Result.dropped`` (nothing when nothing was dropped)."""
    return f"[interrupted: {dropped} characters of output not shown]\n" if dropped > 0 else ""


@dataclass
class Error(Message):
    """The service could not understand a message."""

    op = "error"
    message: str
    id: int | None = None


@dataclass
class Completion:
    """One completion: replace ``start`` characters before the cursor by ``text``."""

    text: str
    start: int  # negative or zero offset from the cursor, as prompt_toolkit wants
    display: str | None = None
    meta: str | None = None


CLIENT_MESSAGES: dict[str, type[Message]] = {
    cls.op: cls
    for cls in (Hello, Eval, Interrupt, InputReply, Complete, Stacks, Logs, Info)
    + (SetKeepalive, Release, Ping, DebugComplete, Bye)
}
SERVICE_MESSAGES: dict[str, type[Message]] = {
    cls.op: cls for cls in (Welcome, Output, InputRequest, Result, Error)
}


def parse(msg: Any, table: dict[str, type[Message]]) -> Message:
    """Turn a received dict into its message class, or raise ``ProtocolError``."""
    if not isinstance(msg, dict):
        raise ProtocolError(f"expected a dict, got {type(msg).__name__}")
    op = msg.get("op")
    if not isinstance(op, str) or op not in table:
        raise ProtocolError(f"unknown op {op!r}")
    return table[op].from_msg(msg)


def parse_client_message(msg: Any) -> Message:
    return parse(msg, CLIENT_MESSAGES)


def parse_service_message(msg: Any) -> Message:
    return parse(msg, SERVICE_MESSAGES)


def _validate(instance: Any, what: str) -> None:
    for name, check, annotation in _field_checks(type(instance)):
        value = getattr(instance, name)
        if not check(value):
            raise ProtocolError(
                f"'{what}' field '{name}' must be {_describe(annotation)}, got {value!r:.80}"
            )


@functools.cache
def _field_checks(cls: type) -> tuple[tuple[str, Callable[[Any], bool], Any], ...]:
    """(name, predicate, annotation) for each of ``cls``'s fields (``ClassVar``
    excluded), the annotations resolved and compiled once per class."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, _checker(hints[f.name]), hints[f.name]) for f in fields(cls))


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@functools.cache
def _checker(annotation: Any) -> Callable[[Any], bool]:
    """Does a value (as msgpack delivers it) have the type ``annotation`` says? The
    predicate is built once per annotation: a listing
    validates a record per worker, and walking ``typing``'s structures for every
    field of every record cost more than the request itself."""
    if annotation is Any:
        return lambda value: True
    origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        return lambda value: any(type(value) is type(v) and value == v for v in allowed)
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        if len(args) == 2 and type(None) in args:  # X | None, the common case
            (other,) = (_checker(a) for a in args if a is not type(None))
            return lambda value: value is None or other(value)
        options = tuple(_checker(arg) for arg in args)
        return lambda value: any(check(value) for check in options)
    if annotation is None or annotation is type(None):
        return lambda value: value is None
    if annotation is bool:
        return lambda value: isinstance(value, bool)
    if annotation in (int, float):  # bool is an int for Python, not for the wire
        allowed_types = (int,) if annotation is int else (int, float)
        return lambda value: isinstance(value, allowed_types) and not isinstance(value, bool)
    if origin in (list, tuple) or annotation in (list, tuple):
        (item,) = typing.get_args(annotation) or (Any,)
        item_check = _checker(item)
        return lambda value: isinstance(value, (list, tuple)) and all(map(item_check, value))
    if origin is dict or annotation is dict:
        return lambda value: isinstance(value, dict)
    return lambda value: isinstance(value, annotation)


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return " or ".join(repr(v) for v in typing.get_args(annotation))
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


# --- exec through the scheduler (service/fanout.py) ---------------------------
#
# The client sends ``{"op": EXEC_HANDLER, "workers": [{"name", "address"}, ...],
# "source", "client", "start_within"}`` to the scheduler; the scheduler streams
# ``exec_output`` and one ``exec_done`` per worker (``exec_alive`` while code runs)
# and replies ``exec_end``. To each worker it sends ``{"op": WORKER_EXEC_HANDLER,
# "source", "client", "not_after"}``; the worker answers ``{"op": "started"}``, the
# shell session's ``output`` messages, and its ``result`` as the reply.

# Scheduler handler: run code on many workers, streamed back.
EXEC_HANDLER = "dask_cli_exec"
# Worker handler: run code in a shell session of its own, streamed back.
WORKER_EXEC_HANDLER = "dask_cli_exec_here"


@dataclass
class ExecOutput(Message):
    """Text the code wrote on ``worker``."""

    op = "exec_output"
    worker: str
    stream: str  # Stream
    text: str


@dataclass
class ExecDone(Message):
    """``worker`` finished: ``status`` as in ``Result`` (``failed``: it could not run,
    ``error`` says why)."""

    op = "exec_done"
    worker: str
    status: str = "ok"
    traceback: str | None = None
    error: str | None = None


@dataclass
class ExecAlive(Message):
    """The scheduler still waits for workers (sent every ``start_within / 2`` s)."""

    op = "exec_alive"


@dataclass
class ExecEnd(Message):
    """Every worker is done."""

    op = "exec_end"


EXEC_MESSAGES: dict[str, type[Message]] = {
    cls.op: cls for cls in (ExecOutput, ExecDone, ExecAlive, ExecEnd)
}
