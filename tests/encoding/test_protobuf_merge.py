"""Protobuf's merge rules, checked against upb on the same bytes.

The instances of a singular message field are one message (``MergeFrom``:
scalars of the later one win, repeated fields append, maps keep the last entry
of a key); a oneof keeps its last member; a singular scalar its last value.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Annotated, Any, Protocol

import msgspec
from google.protobuf import json_format
from google.protobuf.message import DecodeError as UpbDecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.protobuf_peers import generated
from transport import (
    DecodeError,
    Fixed32,
    Int32,
    Message,
    Number,
    ProtobufCodec,
    Service,
    SInt64,
    Struct,
    Timestamp,
    UInt32,
    UInt32Value,
    one_of,
    rpc,
)
from transport.examples.jina.protocol import RequestProto
from transport.proto import proto_file

Control = RequestProto.ControlRequestProto


class Leaf(Message):
    """A small message with a packed run and a field of explicit presence."""

    n: Annotated[Int32, Number(1)] = 0
    s: Annotated[str, Number(2)] = ""
    tags: Annotated[list[UInt32], Number(3)] = []
    blob: Annotated[bytes | None, Number(4)] = None


class Tree(Message):
    """Every shape that merges: embedded, repeated, packed, maps, a oneof, a Struct."""

    id: Annotated[SInt64, Number(1)] = 0
    leaf: Annotated[Leaf | None, Number(2)] = None
    leaves: Annotated[list[Leaf], Number(3)] = []
    ints: Annotated[list[Int32], Number(4)] = []
    fixed: Annotated[list[Fixed32], Number(5)] = []
    names: Annotated[list[str], Number(6)] = []
    counts: Annotated[dict[str, Int32], Number(7)] = {}
    by_id: Annotated[dict[Int32, Leaf], Number(8)] = {}
    child: Annotated[Tree | None, Number(9, oneof="pick")] = None
    word: Annotated[str | None, Number(10, oneof="pick")] = None
    number: Annotated[Int32 | None, Number(11, oneof="pick")] = None
    maybe: Annotated[Int32 | None, Number(12)] = None
    flag: Annotated[bool, Number(13)] = False
    attributes: Annotated[Struct, Number(14)] = {}
    at: Annotated[Timestamp | None, Number(15)] = None
    step: Annotated[UInt32Value, Number(16)] = None

    def __post_init__(self) -> None:
        one_of(self, "child", "word", "number")


class Trees(Service, Protocol, name="transport.test.v1.Trees"):
    """A service to export the messages as a .proto."""

    @rpc
    def Send(self, request: Tree) -> Leaf: ...


CODEC = ProtobufCodec(Tree)


def _peer() -> Any:
    return generated("merging", proto_file(Trees)).Tree


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def test_two_instances_of_the_jina_control_body_are_one_merged_body() -> None:
    codec = ProtobufCodec(RequestProto)
    status = codec.encode(RequestProto(control=Control(command=Control.Command.STATUS)))
    args = codec.encode(RequestProto(control=Control(args={"timeout": 3.0})))
    merged = codec.decode(status + args)
    assert merged.control == Control(command=Control.Command.STATUS, args={"timeout": 3.0})


def test_a_oneof_keeps_its_last_member() -> None:
    word, number = CODEC.encode(Tree(word="w")), CODEC.encode(Tree(number=7))
    child = CODEC.encode(Tree(child=Tree(id=1)))
    assert CODEC.decode(word + number) == Tree(number=7)
    assert CODEC.decode(number + word) == Tree(word="w")
    assert CODEC.decode(child + word) == Tree(word="w")
    # A member that comes back after another starts afresh: nothing of before merges in.
    again = CODEC.encode(Tree(child=Tree(flag=True)))
    assert CODEC.decode(child + word + again) == Tree(child=Tree(flag=True))
    assert CODEC.decode(child + again) == Tree(child=Tree(id=1, flag=True))


def test_a_singular_scalar_keeps_its_last_value() -> None:
    data = CODEC.encode(Tree(id=5, word="a")) + CODEC.encode(Tree(id=-9, word="b"))
    assert CODEC.decode(data) == Tree(id=-9, word="b")
    assert CODEC.decode(data + b"\x08\x00") == Tree(id=0, word="b")  # an explicit zero too


def test_instances_merge_at_every_depth() -> None:
    first = Tree(
        word="x",
        leaf=Leaf(n=1, tags=[1, 2]),
        counts={"a": 1, "b": 2},
        attributes={"k": 1.0, "list": [1.0]},
        at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        step=4,
    )
    second = Tree(leaf=Leaf(s="y", tags=[3]), counts={"b": 3}, attributes={"list": ["z"]})
    merged = CODEC.decode(CODEC.encode(first) + CODEC.encode(second))
    assert merged == Tree(
        word="x",
        leaf=Leaf(n=1, s="y", tags=[1, 2, 3]),
        counts={"a": 1, "b": 3},
        attributes={"k": 1.0, "list": ["z"]},  # a Struct is a map: the last entry of a key
        at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        step=4,
    )
    # Timestamp seconds then nanos, in two instances: one time.
    at = b"\x7a\x02\x08\x01" + b"\x7a\x03\x10\xe8\x07"  # field 15: {seconds: 1}, {nanos: 1000}
    assert CODEC.decode(b"\x52\x00" + at).at == datetime(1970, 1, 1, 0, 0, 1, 1, timezone.utc)


def test_a_oneof_inside_merged_instances_keeps_its_last_member() -> None:
    # The two instances of `child` are one message, checked once: word, then number.
    inner_a = CODEC.encode(Tree(word="a"))
    inner_b = CODEC.encode(Tree(number=2))
    data = b"\x4a" + _varint(len(inner_a)) + inner_a + b"\x4a" + _varint(len(inner_b)) + inner_b
    assert CODEC.decode(data) == Tree(child=Tree(number=2))


def test_a_map_value_given_twice_in_one_entry_is_merged() -> None:
    value_a, value_b = b"\x12\x02\x08\x05", b"\x12\x03\x12\x01q"  # {n: 5}, {s: "q"}
    entry = b"\x08\x01" + value_a + value_b
    data = b"\x42" + _varint(len(entry)) + entry + b"\x52\x00"
    assert CODEC.decode(data).by_id == {1: Leaf(n=5, s="q")}
    assert _peer().FromString(data).by_id[1].n == 5  # upb reads it so too


# --- the same bytes through upb ------------------------------------------------------------

_LEAVES = st.builds(
    Leaf,
    n=st.integers(-3, 3),
    s=st.sampled_from(["", "a", "é"]),
    tags=st.lists(st.integers(0, 300), max_size=3),
    blob=st.none() | st.binary(max_size=2),
)
_JSON = st.none() | st.booleans() | st.sampled_from([0.0, 1.5, -2.0]) | st.sampled_from(["", "v"])
_STRUCTS = st.dictionaries(
    st.sampled_from(["x", "y"]),
    _JSON | st.lists(_JSON, max_size=2) | st.dictionaries(st.sampled_from(["p"]), _JSON),
    max_size=2,
)


def _trees(depth: int) -> st.SearchStrategy[Tree]:
    picks: list[st.SearchStrategy[dict[str, Any]]] = [
        st.just({}),
        st.fixed_dictionaries({"word": st.sampled_from(["", "w"])}),
        st.fixed_dictionaries({"number": st.integers(-1, 300)}),
    ]
    if depth < 2:
        picks.append(st.fixed_dictionaries({"child": _trees(depth + 1)}))
    fields = st.fixed_dictionaries(
        {
            "id": st.integers(-2, 2),
            "leaf": st.none() | _LEAVES,
            "leaves": st.lists(_LEAVES, max_size=2),
            "ints": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=3),
            "fixed": st.lists(st.integers(0, 2**32 - 1), max_size=2),
            "names": st.lists(st.sampled_from(["", "n"]), max_size=2),
            "counts": st.dictionaries(st.sampled_from(["a", "b"]), st.integers(-2, 2), max_size=2),
            "by_id": st.dictionaries(st.integers(0, 2), _LEAVES, max_size=2),
            "maybe": st.none() | st.integers(-1, 1),
            "flag": st.booleans(),
            "attributes": _STRUCTS,
            "step": st.none() | st.integers(0, 3),
        }
    )
    return st.builds(lambda f, pick: Tree(**f, **pick), fields, st.one_of(picks))


def _fields(data: bytes) -> list[bytes]:
    """The top-level fields of an encoded message, each with its tag."""
    out, pos = [], 0
    while pos < len(data):
        start = pos
        while data[pos] & 0x80:  # the tag
            pos += 1
        tag = data[pos]
        pos += 1
        if tag & 7 == 0:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        else:
            size, shift = 0, 0
            while True:
                byte = data[pos]
                pos += 1
                size |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
            pos += size
        out.append(data[start:pos])
    return out


def _unpacked(field: bytes) -> list[bytes]:
    """A packed run of ``ints`` (4) or ``fixed`` (5) as one tagged element each."""
    if field[0] == 0x2A:  # fixed32: 4 bytes each
        payload = field[2:]
        return [b"\x2d" + payload[i : i + 4] for i in range(0, len(payload), 4)]
    if field[0] == 0x22:
        payload, elements, pos = field[2:], [], 0
        while pos < len(payload):
            end = pos
            while payload[end] & 0x80:
                end += 1
            elements.append(b"\x20" + payload[pos : end + 1])
            pos = end + 1
        return elements
    return [field]


@st.composite
def _wire(draw: st.DrawFn) -> bytes:
    """Fields of 1 to 3 messages, shuffled, packed runs sometimes unpacked, sometimes cut."""
    fields: list[bytes] = []
    for tree in draw(st.lists(_trees(0), min_size=1, max_size=3)):
        fields += _fields(CODEC.encode(tree))
    if draw(st.booleans()):
        fields = [element for field in fields for element in _unpacked(field)]
    rng = random.Random(draw(st.integers(0, 2**32)))
    rng.shuffle(fields)
    if draw(st.booleans()):  # a field given twice in a row (a map entry: a duplicate key)
        fields += fields[-1:]
    data = b"".join(fields)
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _normal(value: Any) -> Any:
    """Numbers as strings (proto3 JSON writes 64-bit ones so), map keys as strings."""
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items() if (k, v) != ("attributes", {})}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_wire())
def test_any_bytes_decode_as_upb_decodes_them_or_both_refuse(data: bytes) -> None:
    peer = _peer()
    try:
        theirs: Any = _normal(json_format.MessageToDict(peer.FromString(data)))
    except UpbDecodeError:
        theirs = "refused"
    try:
        ours: Any = _normal(msgspec.to_builtins(CODEC.decode(data)))
    except DecodeError:
        ours = "refused"
    assert ours == theirs, data.hex()


def test_the_property_sees_the_shapes_it_is_about() -> None:
    # Merged leaves, a oneof switched, a duplicate key and an unpacked run, in one input.
    one = CODEC.encode(Tree(leaf=Leaf(n=1), word="a", counts={"a": 1}, ints=[1, 2]))
    two = CODEC.encode(Tree(leaf=Leaf(s="b"), number=3, counts={"a": 2}))
    data = one + two + b"\x20\x03"
    assert CODEC.decode(data) == Tree(
        leaf=Leaf(n=1, s="b"), number=3, counts={"a": 2}, ints=[1, 2, 3]
    )
    assert _normal(json_format.MessageToDict(_peer().FromString(data))) == _normal(
        msgspec.to_builtins(CODEC.decode(data))
    )
