"""The protobuf codec: every field kind against protoc-generated classes, and hostile input."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.protobuf_peers import generated, messages
from transport import (
    DecodeError,
    Duration,
    Empty,
    EnumField,
    Fixed32,
    Fixed64,
    Float32,
    Int32,
    JsonCodec,
    ListValue,
    Message,
    Number,
    ProtobufCodec,
    ProtoEnum,
    Service,
    SFixed32,
    SFixed64,
    SInt32,
    SInt64,
    Struct,
    Timestamp,
    UInt32,
    UInt32Value,
    UInt64,
    Value,
    one_of,
    rpc,
)
from transport.encoding.protobuf import MAX_DEPTH
from transport.encoding.wellknown import BoolValue, BytesValue, DoubleValue, StringValue
from transport.examples.jina.protocol import RequestProto
from transport.examples.runner.protocol import ClientMsg
from transport.proto import proto_file

pytestmark = pytest.mark.slow  # fuzzing (hypothesis) and protoc-generated classes


class Color(ProtoEnum):
    """A color."""

    UNSET = 0
    RED = 1
    BLUE = -2


class Node(Message):
    """A recursive message: a tree."""

    name: Annotated[str, Number(1)] = ""
    children: Annotated[list[Node], Number(2)] = []
    parent: Annotated[Node | None, Number(3)] = None


class Scalars(Message):
    """One field of each scalar kind."""

    i32: Annotated[Int32, Number(1)] = 0
    i64: Annotated[int, Number(2)] = 0
    u32: Annotated[UInt32, Number(3)] = 0
    u64: Annotated[UInt64, Number(4)] = 0
    s32: Annotated[SInt32, Number(5)] = 0
    s64: Annotated[SInt64, Number(6)] = 0
    f32: Annotated[Fixed32, Number(7)] = 0
    f64: Annotated[Fixed64, Number(8)] = 0
    sf32: Annotated[SFixed32, Number(9)] = 0
    sf64: Annotated[SFixed64, Number(10)] = 0
    flt: Annotated[Float32, Number(11)] = 0.0
    dbl: Annotated[float, Number(12)] = 0.0
    flag: Annotated[bool, Number(13)] = False
    text: Annotated[str, Number(14)] = ""
    blob: Annotated[bytes, Number(15)] = b""
    color: Annotated[EnumField[Color], Number(16)] = Color.UNSET


class Everything(Message):
    """Every other kind: repeated, optional, wrappers, maps, oneof, well-known types."""

    scalars: Annotated[Scalars | None, Number(1)] = None
    ints: Annotated[list[SInt64], Number(2)] = []
    floats: Annotated[list[Float32], Number(3)] = []
    colors: Annotated[list[Color], Number(4)] = []
    names: Annotated[list[str], Number(5)] = []
    maybe: Annotated[Int32 | None, Number(6)] = None
    maybe_text: Annotated[str | None, Number(7)] = None
    step: Annotated[UInt32Value, Number(8)] = None
    ratio: Annotated[DoubleValue, Number(9)] = None
    on: Annotated[BoolValue, Number(10)] = None
    label: Annotated[StringValue, Number(11)] = None
    raw: Annotated[BytesValue, Number(12)] = None
    counts: Annotated[dict[str, Int32], Number(13)] = {}
    by_id: Annotated[dict[int, Node], Number(14)] = {}
    node: Annotated[Node | None, Number(15, oneof="choice")] = None
    word: Annotated[str | None, Number(16, oneof="choice")] = None
    at: Annotated[Timestamp | None, Number(17)] = None
    wait: Annotated[Duration | None, Number(18)] = None
    attributes: Annotated[Struct, Number(19)] = {}
    anything: Annotated[Value, Number(20)] = None
    items: Annotated[ListValue, Number(21)] = []
    array: Annotated[np.ndarray | None, Number(22)] = None
    nothing: Annotated[Empty | None, Number(23)] = None
    far: Annotated[str, Number(536_870_911)] = ""

    def __post_init__(self) -> None:
        one_of(self, "node", "word")


class Kinds(Service, Protocol, name="transport.test.v1.Kinds"):
    """A service that reaches every kind."""

    @rpc
    def Send(self, requests: Iterator[Everything]) -> Empty: ...


def _peer(message_type: type[Any]) -> Any:
    return getattr(generated("everything", proto_file(Kinds)), message_type.__name__)


EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("message_type", [Scalars, Everything, Node])
@EXAMPLES
@given(data=st.data())
def test_generated_classes_read_every_kind_back(
    message_type: type[Any], data: st.DataObject
) -> None:
    message = data.draw(messages(message_type))
    codec = ProtobufCodec(message_type)
    peer = _peer(message_type).FromString(codec.encode(message))
    peer.DiscardUnknownFields()
    decoded = codec.decode(peer.SerializeToString())
    if message_type is Everything and message.array is not None:
        assert decoded.array.dtype == message.array.dtype
        assert decoded.array.tobytes() == message.array.tobytes()
        decoded.array = message.array = None
    assert decoded == message


@pytest.mark.parametrize("message_type", [Scalars, Everything])
@EXAMPLES
@given(data=st.data())
def test_every_kind_written_by_generated_classes_decodes(
    message_type: type[Any], data: st.DataObject
) -> None:
    message = data.draw(messages(message_type))
    if message_type is Everything:  # JSON has no array message and writes ISO 8601 durations
        message = msgspec.structs.replace(message, wait=None, array=None)
    peer = json_format.Parse(JsonCodec(message_type).encode(message), _peer(message_type)())
    assert ProtobufCodec(message_type).decode(peer.SerializeToString()) == message


def test_the_bytes_of_scalars_are_those_of_the_generated_classes() -> None:
    message = Scalars(i32=-1, i64=-(2**63), u64=2**64 - 1, s32=-5, flt=-0.0, color=Color.BLUE)
    expected = _peer(Scalars)(i32=-1, i64=-(2**63), u64=2**64 - 1, s32=-5, flt=-0.0, color=-2)
    assert ProtobufCodec(Scalars).encode(message) == expected.SerializeToString()


def test_an_empty_message_is_zero_bytes() -> None:
    assert ProtobufCodec(Empty).encode(Empty()) == b""
    assert ProtobufCodec(Empty).decode(b"") == Empty()
    assert ProtobufCodec(Scalars).decode(b"") == Scalars()


class Numbers(Message):
    """Repeated numbers, to craft packed and unpacked input by hand."""

    values: Annotated[list[Int32], Number(1)] = []
    doubles: Annotated[tuple[float, ...], Number(2)] = ()


def test_repeated_scalars_decode_packed_unpacked_and_mixed() -> None:
    codec = ProtobufCodec(Numbers)
    assert codec.encode(Numbers(values=[1, 2, 300])) == b"\x0a\x04\x01\x02\xac\x02"
    unpacked = b"\x08\x01\x08\x02\x08\xac\x02"
    assert codec.decode(unpacked) == Numbers(values=[1, 2, 300])
    mixed = b"\x08\x01\x0a\x02\x02\x03\x08\x04"
    assert codec.decode(mixed) == Numbers(values=[1, 2, 3, 4])
    doubles = b"\x12\x10" + np.array([1.5, -2.0]).tobytes() + b"\x11" + np.float64(3).tobytes()
    assert codec.decode(doubles) == Numbers(doubles=(1.5, -2.0, 3.0))


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (
        b"\x98\x01\x05"  # field 19 varint
        + b"\xa1\x01"
        + b"\x00" * 8  # field 20 fixed64
        + b"\xaa\x01\x02hi"  # field 21 bytes
        + b"\xb5\x01"
        + b"\x00" * 4  # field 22 fixed32
        + b"\xbb\x01\x08\x01\xbc\x01"  # field 23 group holding a varint
    )
    data = unknown + ProtobufCodec(Numbers).encode(Numbers(values=[7])) + unknown
    assert ProtobufCodec(Numbers).decode(data) == Numbers(values=[7])


def test_a_known_field_with_another_wire_type_is_skipped_as_unknown() -> None:
    assert ProtobufCodec(Scalars).decode(b"\x75\x00\x00\x00\x00") == Scalars()  # text as fixed32


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x0a\x05\x01", "truncated protobuf message - at `$.values`"),
        (b"\x08", "truncated protobuf message - at `$.values[0]`"),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "more than 10 bytes"),
        (b"\x00\x01", "field number 0"),
        (b"\x0e", "wire type 6"),
        (b"\x12\x03abc", "malformed packed field - at `$.doubles`"),
        (b"\x0a\xff\xff\xff\xff\x0f", "truncated protobuf message"),  # 4 GiB claimed
        (b"\x1b\x08\x01", "truncated"),  # a group never closed
        (b"\x1b\x24", "mismatched group end"),
    ],
)
def test_malformed_input_is_a_decode_error(data: bytes, error: str) -> None:
    with pytest.raises(DecodeError) as caught:
        ProtobufCodec(Numbers).decode(data)
    assert error in str(caught.value)


def test_a_bad_value_deep_inside_names_its_path() -> None:
    codec = ProtobufCodec(Everything)
    good = codec.encode(Everything(node=Node(children=[Node(name="a"), Node(name="b")])))
    bad = good.replace(b"\x0a\x01b", b"\x0a\x01\xff")
    with pytest.raises(DecodeError, match=r"not UTF-8 .* - at `\$\.node\.children\[1\]\.name`"):
        codec.decode(bad)
    with pytest.raises(
        DecodeError, match=r"Invalid enum value 7 for Color - at `\$\.scalars\.color`"
    ):
        codec.decode(b"\x0a\x03\x80\x01\x07")
    # Two members of a oneof: the last one wins, as protobuf parsers read it.
    both = codec.encode(Everything(word="w")) + codec.encode(Everything(node=Node()))
    assert codec.decode(both) == Everything(node=Node())


class Checked(Message):
    """A message whose own check fails the way msgspec's do."""

    inner: Annotated[Numbers | None, Number(1)] = None

    def __post_init__(self) -> None:
        if self.inner is not None and len(self.inner.values) > 2:
            raise msgspec.ValidationError("at most 2 values")


class HoldsChecked(Message):
    """A message holding one that checks itself."""

    checked: Annotated[Checked | None, Number(1)] = None


def test_a_failed_check_of_a_nested_message_names_its_field() -> None:
    codec = ProtobufCodec(HoldsChecked)
    fine = HoldsChecked(checked=Checked(inner=Numbers(values=[1])))
    assert codec.decode(codec.encode(fine)) == fine
    too_many = b"\x0a\x07\x0a\x05\x0a\x03\x01\x02\x03"
    with pytest.raises(DecodeError, match=r"^at most 2 values - at `\$\.checked`$"):
        codec.decode(too_many)


def test_declared_constraints_are_checked_as_json_checks_them() -> None:
    class Bounded(Message):
        percent: Annotated[int, msgspec.Meta(ge=0, le=100), Number(1)] = 0
        tag: Annotated[str, msgspec.Meta(max_length=3), Number(2)] = ""

    codec = ProtobufCodec(Bounded)
    assert codec.decode(b"\x08\x64") == Bounded(percent=100)
    with pytest.raises(DecodeError, match=r"<= 100 - at `\$\.percent`"):
        codec.decode(b"\x08\x65")
    with pytest.raises(DecodeError, match=r"length <= 3 - at `\$\.tag`"):
        codec.decode(b"\x12\x04abcd")


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    codec = ProtobufCodec(Node)
    nested = b""
    for _ in range(MAX_DEPTH + 2):
        nested = b"\x1a" + _varint(len(nested)) + nested
    with pytest.raises(DecodeError, match="nested too deeply"):
        codec.decode(nested)
    shallow = b""
    for _ in range(MAX_DEPTH - 1):
        shallow = b"\x1a" + _varint(len(shallow)) + shallow
    assert codec.decode(shallow).parent is not None
    values = b""
    for _ in range(MAX_DEPTH + 2):  # google.protobuf.Value lists inside lists
        listed = b"\x0a" + _varint(len(values)) + values
        values = b"\x32" + _varint(len(listed)) + listed
    with pytest.raises(DecodeError, match="nested too deeply"):
        ProtobufCodec(Everything).decode(b"\xa2\x01" + _varint(len(values)) + values)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def test_a_repeated_field_cannot_make_more_elements_than_bytes() -> None:
    # A packed run that claims more bytes than arrived ends before any element is made.
    with pytest.raises(DecodeError, match="truncated"):
        ProtobufCodec(Numbers).decode(b"\x0a\x80\x80\x80\x01" + b"\x01" * 100)


def test_an_array_decodes_as_a_view_of_the_input_without_a_copy() -> None:
    codec = ProtobufCodec(Everything)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = codec.encode(Everything(word="x", array=array))
    assert array.tobytes() in data  # raw bytes, no base64
    decoded = codec.decode(data).array
    assert decoded is not None and decoded.shape == (3, 4) and (decoded == array).all()
    assert np.shares_memory(decoded, np.frombuffer(data, np.uint8))
    assert not decoded.flags.writeable


class Typed(Message):
    """An array field of a declared dtype."""

    values: Annotated[npt.NDArray[np.float32], Number(1)]


def test_an_array_of_another_dtype_than_declared_is_refused_with_its_path() -> None:
    data = ProtobufCodec(Everything).encode(Everything(word="x", array=np.arange(3)))
    start = data.index(b"\xb2\x01")  # field 22
    inner = data[start + 2 :]
    with pytest.raises(
        DecodeError, match=r"expected an array of float32, got int64 - at `\$\.values`"
    ):
        ProtobufCodec(Typed).decode(b"\x0a" + inner)


def test_encoding_clamps_float32_and_refuses_integers_out_of_range() -> None:
    codec = ProtobufCodec(Scalars)
    assert codec.decode(codec.encode(Scalars(flt=1e300))).flt == math.inf
    with pytest.raises(ValueError, match="out of range for int32"):
        codec.encode(Scalars(i32=2**31))
    with pytest.raises(ValueError, match="out of range for uint64"):
        codec.encode(Scalars(u64=-1))


def test_well_known_values_keep_their_meaning() -> None:
    codec = ProtobufCodec(Everything)
    at = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=timezone.utc)
    message = Everything(
        word="",
        at=at,
        wait=timedelta(seconds=-1, microseconds=250_000),
        attributes={"a": [1.5, None, True, {"b": "c"}]},
        anything=None,
        step=0,
        nothing=Empty(),
    )
    decoded = codec.decode(codec.encode(message))
    assert decoded == message
    peer = _peer(Everything).FromString(codec.encode(message))
    assert peer.at.seconds == -1 and peer.at.nanos == 500_000_000
    assert peer.wait.seconds == 0 and peer.wait.nanos == -750_000_000
    assert peer.HasField("step") and peer.step.value == 0 and not peer.HasField("ratio")
    assert peer.attributes["a"][3]["b"] == "c"


@pytest.mark.parametrize("message_type", [Everything, Scalars, Node, RequestProto, ClientMsg])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bytes_decode_or_fail_with_a_decode_error(
    message_type: type[Any], data: st.DataObject
) -> None:
    valid = ProtobufCodec(message_type).encode(data.draw(messages(message_type)))
    # Random bytes, or a valid message with a few bytes changed or cut.
    garbled = bytearray(valid)
    for _ in range(data.draw(st.integers(0, 3))):
        if garbled:
            garbled[data.draw(st.integers(0, len(garbled) - 1))] = data.draw(st.integers(0, 255))
    cut = bytes(garbled[: data.draw(st.integers(0, len(garbled)))])
    for attempt in (data.draw(st.binary(max_size=64)), bytes(garbled), cut):
        with contextlib.suppress(DecodeError):
            ProtobufCodec(message_type).decode(attempt)
