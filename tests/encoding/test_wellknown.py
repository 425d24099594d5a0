"""Well-known types, proto enums and oneof without protobuf (transport/wellknown.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import grpc
import msgspec
import pytest
from typing_extensions import assert_type

from transport import (
    Context,
    DecodeError,
    Empty,
    EnumField,
    JsonCodec,
    Message,
    ProtoEnum,
    Service,
    Struct,
    Timestamp,
    UInt32Value,
    bind,
    one_of,
    rpc,
)
from transport.testing import TestServer


class LogLevel(ProtoEnum):
    NONE = 0
    INFO = 1
    DEBUG = 2
    VERBOSE = 2  # an alias, as with `option allow_alias = true`
    AUDIT = 5


class Record(Message):
    level: EnumField[LogLevel] = LogLevel.NONE
    history: list[EnumField[LogLevel]] = []
    strict_level: LogLevel = LogLevel.NONE
    at: Timestamp | None = None
    step: UInt32Value = None
    tags: Struct = {}


class Body(Message):
    text: str | None = None
    number: int | None = None
    empty: Empty | None = None

    def __post_init__(self) -> None:
        one_of(self, "text", "number", "empty", required=True)


RECORD = JsonCodec(Record)
BODY = JsonCodec(Body)


def test_members_are_declared_by_number_and_named_on_the_wire() -> None:
    assert LogLevel.INFO.number == 1 and LogLevel.INFO.value == "INFO"
    assert LogLevel(1) is LogLevel("INFO") is LogLevel.INFO
    assert LogLevel["VERBOSE"] is LogLevel.DEBUG
    assert repr(LogLevel.AUDIT) == "<LogLevel.AUDIT: 5>"
    assert [m.name for m in LogLevel] == ["NONE", "INFO", "DEBUG", "AUDIT"]
    with pytest.raises(ValueError):
        LogLevel(3)
    assert RECORD.encode(Record(level=LogLevel.AUDIT, history=[LogLevel.INFO])) == (
        b'{"level":"AUDIT","history":["INFO"]}'
    )


def test_an_enum_field_accepts_the_name_or_the_number() -> None:
    record = RECORD.decode(b'{"level": 5, "history": ["INFO", 2, "VERBOSE"]}')
    assert_type(record.level, LogLevel)
    assert_type(record.history, list[LogLevel])
    assert record.level is LogLevel.AUDIT
    assert record.history == [LogLevel.INFO, LogLevel.DEBUG, LogLevel.DEBUG]


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b'{"level": 3}', "Invalid enum value 3 - at `$.level`"),
        (b'{"level": "LOUD"}', "Invalid enum value 'LOUD' - at `$.level`"),
        (b'{"level": 1.0}', "Expected `int | str`, got `float` - at `$.level`"),
        (b'{"history": ["INFO", null]}', "got `null` - at `$.history[1]`"),
        (b'{"strictLevel": 1}', "Expected `str`, got `int` - at `$.strictLevel`"),
    ],
)
def test_a_bad_enum_value_names_the_field(wire: bytes, error: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(error)):
        RECORD.decode(wire)


def test_enum_members_must_be_numbers() -> None:
    with pytest.raises(TypeError, match="is an int"):

        class Bad(ProtoEnum):
            A = "a"


def test_enum_field_takes_a_proto_enum() -> None:
    with pytest.raises(TypeError, match="ProtoEnum subclass"):
        EnumField[int]


def test_timestamp_is_rfc3339_and_needs_an_offset() -> None:
    at = datetime(2026, 11, 22, 9, 30, 0, 250000, tzinfo=timezone.utc)
    assert RECORD.encode(Record(at=at)) == b'{"at":"2026-11-22T09:30:00.250000Z"}'
    decoded = RECORD.decode(b'{"at": "2026-11-22T11:30:00.25+02:00"}').at
    assert decoded == at and decoded.utcoffset() == timedelta(hours=2)
    with pytest.raises(DecodeError, match=r"timezone.*\$\.at"):
        RECORD.decode(b'{"at": "2026-11-22T09:30:00"}')


def test_wrappers_are_a_plain_number_or_absent() -> None:
    assert RECORD.encode(Record()) == b"{}"
    assert RECORD.encode(Record(step=0)) == b'{"step":0}'
    assert RECORD.decode(b'{"step": 7}').step == 7
    with pytest.raises(DecodeError, match=r">= 0 - at `\$\.step`"):
        RECORD.decode(b'{"step": -1}')


def test_struct_is_any_json_object() -> None:
    tags = {"a": [1, 2.5, None, {"b": True}], "c": "d"}
    assert RECORD.decode(RECORD.encode(Record(tags=tags))).tags == tags
    with pytest.raises(DecodeError, match=r"Expected `object`, got `array` - at `\$\.tags`"):
        RECORD.decode(b'{"tags": [1]}')


def test_empty_is_an_empty_object() -> None:
    codec = JsonCodec(Empty)
    assert codec.encode(Empty()) == b"{}"
    assert codec.decode(b'{"ignored": 1}') == Empty()


def test_a_oneof_carries_exactly_the_member_set() -> None:
    assert BODY.encode(Body(number=0)) == b'{"number":0}'
    assert BODY.encode(Body(empty=Empty())) == b'{"empty":{}}'
    assert BODY.decode(b'{"text": ""}') == Body(text="")
    with pytest.raises(ValueError, match="only one of text, number, empty may be set, got text"):
        Body(text="a", number=1)
    with pytest.raises(ValueError, match="one of text, number, empty must be set"):
        Body()


def test_a_bad_oneof_names_the_message_when_decoded() -> None:
    class Holder(Message):
        bodies: list[Body] = []

    with pytest.raises(DecodeError, match=r"got number, empty - at `\$\.bodies\[1\]`"):
        JsonCodec(Holder).decode(b'{"bodies": [{"text": "a"}, {"number": 1, "empty": {}}]}')


def test_one_of_uses_the_wire_names() -> None:
    class Renamed(Message):
        try_: int | None = msgspec.field(default=None, name="try")
        data_frame: int | None = None

    with pytest.raises(ValueError, match="only one of try, dataFrame may be set"):
        one_of(Renamed(try_=1, data_frame=2), "try_", "data_frame")
    assert one_of(Renamed(), "try_", "data_frame") is None


class Logger(Service, Protocol, name="test.wellknown.Logger"):
    @rpc
    def Log(self, request: Record) -> Body: ...


class LoggerServer:
    def Log(self, request: Record, context: Context) -> Body:
        return Body(text=request.level.name)


def test_a_server_answers_a_bad_enum_or_oneof_with_invalid_argument(
    transport_serve: Callable[..., TestServer],
) -> None:
    client = transport_serve(bind(Logger, LoggerServer())).client
    raw: Any = client.channel.unary_unary("/test.wellknown.Logger/Log")
    assert raw(b'{"level": 2}') == b'{"text":"DEBUG"}'
    for bad, where in ((b'{"level": 9}', "$.level"), (b'{"tags": 1}', "$.tags")):
        with pytest.raises(grpc.RpcError) as caught:
            raw(bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert where in str(caught.value.details())
    assert client.call(Logger.Log, Record(level=LogLevel.INFO)) == Body(text="INFO")
