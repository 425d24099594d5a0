"""The JSON codec and the proto3 JSON mapping of messages, byte for byte."""

from __future__ import annotations

import base64
import datetime as dt
import enum
from typing import Annotated, Any

import msgspec
import pytest

from transport import (
    DecodeError,
    FrozenMessage,
    Int32,
    Int64,
    JsonCodec,
    Message,
    Number,
    ProtobufCodec,
    UInt32,
    UInt64,
)
from transport.encoding import Codec


class Level(enum.Enum):
    """A proto enum: the value is the name, so it travels by name."""

    LEVEL_UNSPECIFIED = "LEVEL_UNSPECIFIED"
    DEBUG = "DEBUG"
    INFO = "INFO"


class Item(Message):
    some_value: int


class Job(Message):
    source_path: str
    max_retries: int = 3
    items: list[Item] = []
    level: Level = Level.LEVEL_UNSPECIFIED
    started_at: dt.datetime | None = None
    payload: bytes = b""
    config: dict[str, Any] = {}


class Legacy(Message, rename=None):
    source_path: str
    max_retries: int = 3


class Empty(Message):
    pass


class Frozen(FrozenMessage, frozen=True):
    sensor_id: str
    value: float = 0.0


class Ranges(Message):
    i32: Int32 = 0
    i64: Int64 = 0
    u32: UInt32 = 0
    u64: UInt64 = 0


JOBS = JsonCodec(Job)


def test_field_names_are_lower_camel_case_on_the_wire() -> None:
    wire = JOBS.encode(Job(source_path="/in", max_retries=5, items=[Item(some_value=1)]))
    assert wire == b'{"sourcePath":"/in","maxRetries":5,"items":[{"someValue":1}]}'
    decoded = JOBS.decode(wire)
    assert decoded.source_path == "/in" and decoded.items[0].some_value == 1


def test_fields_equal_to_their_default_are_omitted() -> None:
    assert JOBS.encode(Job(source_path="a")) == b'{"sourcePath":"a"}'
    assert JOBS.decode(b'{"sourcePath":"a"}') == Job(source_path="a")


def test_rename_none_keeps_the_declared_names() -> None:
    codec = JsonCodec(Legacy)
    assert codec.encode(Legacy(source_path="a", max_retries=1)) == (
        b'{"source_path":"a","max_retries":1}'
    )
    assert codec.decode(b'{"source_path":"b"}') == Legacy(source_path="b")


def test_a_plain_struct_keeps_its_names_and_defaults() -> None:
    class Plain(msgspec.Struct):
        source_path: str
        flag: bool = False

    assert JsonCodec(Plain).encode(Plain(source_path="p")) == b'{"source_path":"p","flag":false}'


def test_bytes_are_standard_base64() -> None:
    raw = bytes(range(256))
    wire = JOBS.encode(Job(source_path="a", payload=raw))
    text = msgspec.json.decode(wire)["payload"]
    assert text == base64.standard_b64encode(raw).decode()
    assert "+" in text and "/" in text and text.endswith("=")
    assert JOBS.decode(wire).payload == raw


def test_enums_travel_by_name() -> None:
    wire = JOBS.encode(Job(source_path="a", level=Level.DEBUG))
    assert wire == b'{"sourcePath":"a","level":"DEBUG"}'
    assert JOBS.decode(wire).level is Level.DEBUG
    with pytest.raises(DecodeError, match=r"Invalid enum value 'LOUD' - at `\$.level`"):
        JOBS.decode(b'{"sourcePath":"a","level":"LOUD"}')


def test_datetimes_are_rfc3339() -> None:
    when = dt.datetime(2026, 11, 22, 12, 30, 5, 250000, tzinfo=dt.timezone.utc)
    wire = JOBS.encode(Job(source_path="a", started_at=when))
    assert wire == b'{"sourcePath":"a","startedAt":"2026-11-22T12:30:05.250000Z"}'
    assert JOBS.decode(wire).started_at == when
    offset = JOBS.decode(b'{"sourcePath":"a","startedAt":"2026-11-22T13:30:05.25+01:00"}')
    assert offset.started_at == when
    with pytest.raises(DecodeError, match=r"RFC3339 .* - at `\$.startedAt`"):
        JOBS.decode(b'{"sourcePath":"a","startedAt":"yesterday"}')


def test_an_empty_message_is_an_empty_object() -> None:
    assert JsonCodec(Empty).encode(Empty()) == b"{}"
    assert JsonCodec(Empty).decode(b"{}") == Empty()
    assert JsonCodec(Empty).decode(b'{"anything": [1, 2]}') == Empty()
    assert JsonCodec(Ranges).encode(Ranges()) == b"{}"


def test_unknown_fields_are_ignored() -> None:
    wire = (
        b'{"sourcePath":"a","newerField":{"deep":[1,{"x":null}]},"items":[{"someValue":2,"z":1}]}'
    )
    assert JOBS.decode(wire) == Job(source_path="a", items=[Item(some_value=2)])


def test_errors_name_the_field_path() -> None:
    with pytest.raises(DecodeError) as caught:
        JOBS.decode(b'{"sourcePath":"a","items":[{"someValue":1},{"someValue":"x"}]}')
    assert str(caught.value) == "Expected `int`, got `str` - at `$.items[1].someValue`"
    with pytest.raises(DecodeError, match="Object missing required field `sourcePath`"):
        JOBS.decode(b"{}")
    with pytest.raises(DecodeError, match=r"Invalid base64 encoded string - at `\$.payload`"):
        JOBS.decode(b'{"sourcePath":"a","payload":"not base64!"}')


@pytest.mark.parametrize(
    "wire",
    [b"", b"{", b"nope", b'{"sourcePath": "a",}', b"\xff\xfe", b'{"sourcePath":"a"} trailing'],
)
def test_malformed_json_is_a_decode_error(wire: bytes) -> None:
    with pytest.raises(DecodeError, match=r"^malformed JSON: "):
        JOBS.decode(wire)


def test_deeply_nested_json_is_a_decode_error_not_a_crash() -> None:
    depth = 100_000
    wire = b'{"sourcePath":"a","config":{"x":' + b"[" * depth + b"]" * depth + b"}}"
    with pytest.raises(DecodeError, match="nested too deeply"):
        JOBS.decode(wire)


def test_proto_integer_ranges_are_checked() -> None:
    codec = JsonCodec(Ranges)
    assert codec.decode(b'{"i32":-2147483648,"u64":18446744073709551615}') == Ranges(
        i32=-(2**31), u64=2**64 - 1
    )
    for wire, path in [
        (b'{"i32":2147483648}', "i32"),
        (b'{"i64":9223372036854775808}', "i64"),
        (b'{"u32":4294967296}', "u32"),
        (b'{"u64":-1}', "u64"),
    ]:
        with pytest.raises(DecodeError, match=rf"- at `\$.{path}`"):
            codec.decode(wire)


def test_messages_are_mutable_so_documents_can_be_built_in_steps() -> None:
    job = Job(source_path="a")
    job.items.append(Item(some_value=1))
    job.max_retries = 0
    assert JOBS.encode(job) == b'{"sourcePath":"a","maxRetries":0,"items":[{"someValue":1}]}'


def test_frozen_messages_work_and_are_hashable() -> None:
    codec = JsonCodec(Frozen)
    point = codec.decode(b'{"sensorId":"s1","value":2.5}')
    assert point == Frozen(sensor_id="s1", value=2.5)
    assert {point: 1}[Frozen(sensor_id="s1", value=2.5)] == 1
    with pytest.raises(AttributeError):
        point.value = 3.0  # type: ignore[misc]
    assert codec.encode(point) == b'{"sensorId":"s1","value":2.5}'


def test_numpy_scalars_encode_as_numbers() -> None:
    import numpy as np

    class Reading(Message):
        value: float
        count: int

    wire = JsonCodec(Reading).encode(Reading(value=np.float32(1.5), count=np.int64(3)))
    assert wire == b'{"value":1.5,"count":3}'


def test_objects_the_codec_cannot_encode_are_refused() -> None:
    class Loose(Message):
        anything: Any = None

    with pytest.raises(NotImplementedError, match="cannot encode objects of type object"):
        JsonCodec(Loose).encode(Loose(anything=object()))


def test_the_codec_has_a_name_and_reports_its_type() -> None:
    assert JOBS.name == "json"
    assert JOBS.type is Job


class Reading(Message):
    sensor: Annotated[str, Number(1)] = ""


def test_both_codecs_implement_the_codec_contract() -> None:
    for codec in (JsonCodec(Reading), ProtobufCodec(Reading)):
        assert isinstance(codec, Codec)
        assert codec.decode(codec.encode(Reading(sensor="t1"))) == Reading(sensor="t1")
    assert (JsonCodec.name, ProtobufCodec.name) == ("json", "protobuf")
