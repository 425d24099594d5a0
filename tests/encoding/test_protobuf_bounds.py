"""The protobuf wire is bounded as the JSON wire is: messages and map entries against one allowance.

And what a server echoes stays in proportion: a long packed run of varints is
laid out in one buffer, not one ``bytes`` per element.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport import (
    DecodeLimitError,
    Empty,
    Int32,
    ListValue,
    Message,
    Number,
    ProtobufCodec,
    SInt32,
    SInt64,
    Struct,
    Timestamp,
    UInt32,
    UInt64,
)
from transport.encoding.json_codec import container_allowance
from transport.encoding.protobuf._wire import Malformed, read_varint, scalar_codec
from transport.examples.jina.protocol import RequestProto

MIB = 1 << 20


class Leaf(Message):
    """A small message."""

    n: Annotated[Int32, Number(1)] = 0


class Holder(Message):
    """Every way of holding many messages."""

    leaves: Annotated[list[Leaf], Number(1)] = []
    by_key: Annotated[dict[str, Int32], Number(2)] = {}
    one: Annotated[Leaf | None, Number(3)] = None
    items: Annotated[ListValue, Number(4)] = []
    attributes: Annotated[Struct, Number(5)] = {}
    times: Annotated[list[Timestamp], Number(6)] = []
    nothing: Annotated[list[Empty], Number(7)] = []
    numbers: Annotated[list[int], Number(8)] = []


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def _len(tag: int, payload: bytes) -> bytes:
    return _varint(tag) + _varint(len(payload)) + payload


def test_millions_of_empty_messages_are_refused_quickly_with_their_path() -> None:
    # The attack: 2,096,640 empty DocumentProto in 4 MiB (index { docs {} docs {} ... }).
    data = _len(0x1A, b"\x0a\x00" * 2_096_640)
    assert len(data) <= 4 * MIB
    started = time.thread_time()
    with pytest.raises(DecodeLimitError) as refused:
        ProtobufCodec(RequestProto).decode(data)
    spent = time.thread_time() - started
    allowed = container_allowance(len(data))
    assert str(refused.value) == (
        f"more than {allowed} protobuf messages and map entries in {len(data)} bytes: at most "
        f"{allowed} (16384 and one per 32 bytes) - at `$.index.docs[{allowed - 1}]`"
    )
    # At most the allowance is read (~0.6 s here), not all of them (~9 s before).
    assert spent < 2.0, f"{spent:.2f} s of CPU to refuse it"
    tracemalloc.start()
    try:
        with pytest.raises(DecodeLimitError):
            ProtobufCodec(RequestProto).decode(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # 147,456 DocumentProto of ~500 bytes each (the allowance), not 2 million (~250x).
    assert peak < 24 * len(data), f"{peak / len(data):.1f}x the input"


def _entries(tag: int, entry: bytes) -> Any:
    return lambda n: _len(tag, entry * n)


@pytest.mark.parametrize(
    ("make", "path"),
    [
        (lambda n: _len(0x0A, b"") * n, r"\$\.leaves\[\d+\]"),
        (lambda n: _len(0x12, _len(0x0A, b"k")) * n, r"\$\.byKey\[\.\.\.\]"),  # one key
        (lambda n: _len(0x1A, b"") * n, r"\$\.one"),  # instances of one field: each counts
        (_entries(0x22, _len(0x0A, b"")), r"\$\.items\[\d+\]"),  # a ListValue of nulls
        (_entries(0x2A, _len(0x0A, b"")), r"\$\.attributes"),  # a Struct of one key
        (lambda n: _len(0x32, b"") * n, r"\$\.times\[\d+\]"),
        (lambda n: _len(0x3A, b"") * n, r"\$\.nothing\[\d+\]"),
    ],
)
def test_every_message_and_map_entry_counts_against_the_allowance(make: Any, path: str) -> None:
    codec = ProtobufCodec(Holder)
    codec.decode(make(1000))
    with pytest.raises(
        DecodeLimitError, match=f"protobuf messages and map entries .* - at `{path}`$"
    ):
        codec.decode(make(MIB // len(make(1))))


def test_the_allowance_is_the_json_wires_rule_exactly() -> None:
    codec = ProtobufCodec(Holder)
    # n empty leaves take 2n bytes, which allow 16384 + 2n // 32: the most is 17,476.
    n = 16384
    while n + 1 <= container_allowance(2 * (n + 1)):
        n += 1
    assert n == 17_476
    assert len(codec.decode(b"\x0a\x00" * n).leaves) == n
    with pytest.raises(DecodeLimitError):
        codec.decode(b"\x0a\x00" * (n + 1))


def test_scalars_strings_and_packed_runs_do_not_count() -> None:
    # As a JSON array of numbers is one container: a long packed run decodes.
    values = list(range(300_000))
    codec = ProtobufCodec(Holder)
    assert codec.decode(codec.encode(Holder(numbers=values))).numbers == values


class Packed(Message):
    """A packed run of each varint kind."""

    i64: Annotated[list[int], Number(1)] = []
    i32: Annotated[list[Int32], Number(2)] = []
    u32: Annotated[list[UInt32], Number(3)] = []
    u64: Annotated[list[UInt64], Number(4)] = []
    s32: Annotated[list[SInt32], Number(5)] = []
    s64: Annotated[list[SInt64], Number(6)] = []
    flags: Annotated[list[bool], Number(7)] = []


_KINDS = {
    "int64": st.integers(-(2**63), 2**63 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "sint32": st.integers(-(2**31), 2**31 - 1),
    "sint64": st.integers(-(2**63), 2**63 - 1),
    "bool": st.booleans(),
}


@pytest.mark.parametrize("kind", sorted(_KINDS))
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_vectorised_packed_run_is_the_bytes_of_its_elements(kind: str, data: Any) -> None:
    codec = scalar_codec(kind)
    assert codec is not None and codec.pack is not None
    values = data.draw(st.lists(_KINDS[kind], min_size=64, max_size=300))
    packed = codec.pack(values)
    assert packed is not None
    assert bytes(packed) == b"".join(codec.write(value) for value in values)


def _one_by_one(kind: str, data: bytes) -> list[Any] | None:
    codec = scalar_codec(kind)
    assert codec is not None
    values, pos = [], 0
    try:
        while pos < len(data):
            number, pos = read_varint(data, pos, len(data))
            values.append(codec.read(number))
    except Malformed:
        return None
    return values


@pytest.mark.parametrize("kind", sorted(_KINDS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_vectorised_packed_read_is_the_elements_one_by_one(kind: str, data: Any) -> None:
    codec = scalar_codec(kind)
    assert codec is not None and codec.unpack is not None
    # Varints of every length (10-byte ones with bits past 64 too), or any bytes.
    numbers = st.integers(0, 2**70 - 1).map(lambda n: _varint(n)[:10])
    run = data.draw(st.lists(numbers, min_size=1, max_size=200).map(b"".join) | st.binary())
    padded = b"xx" + run + b"yy"  # read between two positions, not the whole buffer
    # The same list, or None where one by one refuses (which then says why).
    assert codec.unpack(padded, 2, 2 + len(run)) == _one_by_one(kind, run)


def test_out_of_range_elements_of_a_long_run_still_say_why() -> None:
    codec = ProtobufCodec(Packed)
    with pytest.raises(ValueError, match="out of range for int32"):
        codec.encode(Packed(i32=[1] * 100 + [2**31]))
    with pytest.raises(ValueError, match="out of range for uint32"):
        codec.encode(Packed(u32=[1] * 100 + [-1]))
    message = Packed(u64=[2**64 - 1] * 100, i64=[-1] * 100, flags=[True, False] * 50)
    assert codec.decode(codec.encode(message)) == message


def test_echoing_a_4_mib_packed_run_takes_a_few_times_its_size() -> None:
    codec = ProtobufCodec(Packed)
    data = codec.encode(Packed(i64=[random.randrange(128, 16384) for _ in range(2 * MIB - 8)]))
    assert len(data) <= 4 * MIB
    decoded = codec.decode(data)
    tracemalloc.start()
    try:
        echoed = codec.encode(decoded)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert echoed == data
    assert peak < 4 * len(data), f"{peak / len(data):.1f}x the input"  # ~100x before
    started = time.thread_time()
    assert codec.decode(data) == decoded
    spent = time.thread_time() - started
    assert spent < 0.5, f"{spent:.2f} s to read 2 million varints"  # ~1 s one by one
