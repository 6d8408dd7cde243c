"""The wire's one definition: every message round-trips, and the validator checks
each field's declared type (``Literal`` values included)."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest

from dask_cli.debug import protocol

EXAMPLES: list[protocol.Message] = [
    protocol.Hello(version=1, client={"user": "me"}),
    protocol.Eval(id=1, source="1 + 1", mode="exec", filename="<x>"),
    protocol.Interrupt(id=1),
    protocol.InputReply(id=1, text=None),
    protocol.Complete(id=2, source="wor", cursor=3),
    protocol.Stacks(id=3),
    protocol.Logs(id=4, n=5),
    protocol.Info(id=5),
    protocol.SetKeepalive(id=6, enabled=True),
    protocol.Release(id=7),
    protocol.Ping(id=8),
    protocol.DebugComplete(id=9, source="x.", cursor=2),
    protocol.Bye(),
    protocol.Welcome(version=1, session="s", target={}, banner="b", helpers=["tasks()"]),
    protocol.Output(id=1, stream="stderr", text="x"),
    protocol.InputRequest(id=1, prompt="> "),
    protocol.Result(id=1, status="error", error="not kept alive", hint="release it"),
    protocol.Error(message="bad", id=None),
]


def table_of(message: protocol.Message) -> dict[str, type[protocol.Message]]:
    if message.op in protocol.CLIENT_MESSAGES:
        return protocol.CLIENT_MESSAGES
    return protocol.SERVICE_MESSAGES


def test_every_message_is_listed_once() -> None:
    listed = [*protocol.CLIENT_MESSAGES.values(), *protocol.SERVICE_MESSAGES.values()]
    assert sorted(type(m).__name__ for m in EXAMPLES) == sorted(c.__name__ for c in listed)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.op)
def test_round_trip(message: protocol.Message) -> None:
    table = table_of(message)
    assert protocol.parse(message.to_msg(), table) == message


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.op)
def test_every_typed_field_refuses_a_wrong_value(message: protocol.Message) -> None:
    """No annotation the validator silently accepts anything for (``Any`` aside)."""
    table = table_of(message)
    hints = typing.get_type_hints(type(message))
    for f in dataclasses.fields(message):
        if hints[f.name] is typing.Any:
            continue
        wrong = {**message.to_msg(), f.name: object()}
        with pytest.raises(protocol.ProtocolError, match=f"'{f.name}'"):
            protocol.parse(wrong, table)


@pytest.mark.parametrize(
    ("msg", "words"),
    [
        ({"op": "eval", "id": 1, "source": "x", "mode": "run"}, "'auto' or 'exec'"),
        ({"op": "eval", "id": True, "source": "x"}, "'id' must be int"),
        ({"op": "logs", "id": 1, "n": "3"}, "'n' must be int"),
        ({"op": "keepalive", "id": 1, "enabled": 1}, "'enabled' must be bool"),
        ({"op": "eval", "id": 1}, "without 'source'"),
        ({"op": "nope", "id": 1}, "unknown op"),
    ],
)
def test_client_messages_are_checked(msg: dict, words: str) -> None:
    with pytest.raises(protocol.ProtocolError, match=words):
        protocol.parse_client_message(msg)


@pytest.mark.parametrize(
    "msg",
    [
        {"op": "output", "id": 1, "stream": "stdin", "text": "x"},
        {"op": "result", "id": 1, "status": "fine"},
        {"op": "welcome", "version": 1, "session": "s", "target": {}, "banner": "", "helpers": [1]},
    ],
)
def test_literal_and_list_fields_of_service_messages_are_checked(msg: dict) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_service_message(msg)


def test_msgpack_shapes_are_accepted() -> None:
    # Lists may arrive as tuples; a float field takes an int.
    welcome = protocol.parse_service_message(
        {
            "op": "welcome",
            "version": 1,
            "session": "s",
            "target": {},
            "banner": "",
            "helpers": ("a",),
        }
    )
    assert list(welcome.helpers) == ["a"]
    record = protocol.WorkerRecord.from_msg({"address": "tcp://x:1", "kept_alive_since": 5})
    assert record.kept_alive_since == 5


def test_worker_record() -> None:
    record = protocol.WorkerRecord(name="a", address="tcp://x:1", shell_address="tcp://x:2")
    assert protocol.WorkerRecord.from_msg({**record.to_msg(), "extra": 1}) == record
    # The name defaults to the address; the kind is checked.
    assert protocol.WorkerRecord.from_msg({"address": "tcp://x:1"}).name == "tcp://x:1"
    with pytest.raises(protocol.ProtocolError, match="'kind'"):
        protocol.WorkerRecord.from_msg({"address": "tcp://x:1", "kind": "client"})
    with pytest.raises(protocol.ProtocolError, match="must be a dict"):
        protocol.WorkerRecord.from_msg(["tcp://x:1"])


def test_worker_record_to_msg_is_asdict_without_the_copy() -> None:
    """``to_msg`` skips ``asdict``'s deep copy (it is on the path of every listing):
    the same dict, in the same order, for a record with every field set; that holds
    while every field is a scalar, which the annotations must keep saying."""
    record = protocol.WorkerRecord(
        name="w1",
        address="tcp://x:1",
        shell_address="tcp://x:2",
        kind="nanny",
        status=protocol.KEPT_ALIVE,
        pid=12,
        host="node1",
        nthreads=4,
        memory_limit=2**33,
        tasks=3,
        keepalive=True,
        kept_alive_reason="task failed",
        kept_alive_since=1.5,
    )
    unset = [f.name for f in dataclasses.fields(record) if getattr(record, f.name) == f.default]
    assert unset == []
    assert list(record.to_msg().items()) == list(dataclasses.asdict(record).items())
    assert protocol.WorkerRecord.from_msg(record.to_msg()) == record
    msg = record.to_msg()
    msg["name"] = "changed"
    assert record.name == "w1"  # a new dict each time, not the record's own
    scalars = {str, int, float, bool, type(None)}
    for name, hint in typing.get_type_hints(protocol.WorkerRecord).items():
        parts = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        for part in parts:
            assert part in scalars or typing.get_origin(part) is typing.Literal, name


def test_nanny_keepalive_message() -> None:
    message = protocol.NannyKeepalive(enabled=True, kept_alive={"reason": "r", "since": 1.0})
    # distributed adds its own keys to a handler's keyword arguments: ignored.
    assert protocol.NannyKeepalive.from_msg({**message.to_msg(), "reply": True}) == message
    with pytest.raises(protocol.ProtocolError, match="'enabled'"):
        protocol.NannyKeepalive.from_msg({"enabled": "yes"})
    with pytest.raises(protocol.ProtocolError, match="without 'enabled'"):
        protocol.NannyKeepalive.from_msg({})


def test_status_words_are_distinct() -> None:
    assert len({protocol.KEPT_ALIVE, protocol.CLOSED, "running"}) == 3
    assert protocol.MAX_OUTPUT_CHARS > 0 and protocol.MAX_COMPLETIONS > 0
