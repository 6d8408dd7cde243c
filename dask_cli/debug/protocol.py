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

Values of the ``list`` kind may arrive as tuples (msgpack without list decoding):
read them as sequences.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

PROTOCOL_VERSION = 1

# Largest source text or input line accepted by the service, in characters.
MAX_SOURCE_CHARS = 16 * 1024 * 1024

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
        msg = asdict(self)
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
        for f in fields(self):
            _check_type(self.op, f.name, getattr(self, f.name), f.type)


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
    mode: str = "auto"
    filename: str = "<shell>"

    def validate(self) -> None:
        super().validate()
        if self.mode not in ("auto", "exec"):
            raise ProtocolError(f"eval mode must be 'auto' or 'exec', not {self.mode!r}")
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
    """Refresh the ``TargetInfo`` sent with ``welcome``."""

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
class TargetInfo:
    """Who the client is talking to; shown in the banner and in ``dask worker list``."""

    kind: str  # TargetKind
    name: str
    address: str  # the worker's (or scheduler's) own address
    shell_address: str
    status: str  # distributed's status, or "kept-alive"
    pid: int
    host: str
    keepalive: bool = False
    kept_alive_reason: str | None = None
    kept_alive_since: float | None = None  # time.time()

    def to_msg(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_msg(cls, msg: dict[str, Any]) -> TargetInfo:
        names = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in msg.items() if k in names})
        except TypeError as exc:
            raise ProtocolError(f"bad target info: {exc}") from None


@dataclass
class Welcome(Message):
    op = "welcome"
    version: int
    session: str
    target: dict  # TargetInfo.to_msg()
    banner: str


@dataclass
class Output(Message):
    op = "output"
    id: int
    stream: str  # Stream
    text: str


@dataclass
class InputRequest(Message):
    op = "input"
    id: int
    prompt: str = ""


@dataclass
class Result(Message):
    """The end of request ``id``.

    ``status``: ``ok``; ``error`` (``traceback`` holds the remote traceback,
    formatted on the target); ``interrupted``; ``exit`` (the code called
    ``exit()``: the client ends the session). ``value`` is the repr of an
    expression (``auto`` mode), ``data`` the payload of non-eval requests
    (completions, stacks text, log lines, target info).
    """

    op = "result"
    id: int
    status: str = "ok"  # ResultStatus
    value: str | None = None
    traceback: str | None = None
    data: Any = None


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


_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "str": (str,),
    "bool": (bool,),
    "dict": (dict,),
    "str | None": (str, type(None)),
    "int | None": (int, type(None)),
    "float | None": (int, float, type(None)),
}


def _check_type(op: str, name: str, value: Any, annotation: Any) -> None:
    expected = _TYPES.get(str(annotation))
    if expected is None:  # Any
        return
    if isinstance(value, bool) and bool not in expected:
        raise ProtocolError(f"'{op}' field '{name}' must be {annotation}, got bool")
    if not isinstance(value, expected):
        raise ProtocolError(
            f"'{op}' field '{name}' must be {annotation}, got {type(value).__name__}"
        )
