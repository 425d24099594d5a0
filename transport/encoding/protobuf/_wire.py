"""Protobuf wire primitives: varints, tags, skipping unknown fields, and value codecs.

A :class:`ValueCodec` turns one value (a scalar, an enum, a well-known
message) into its payload bytes and back; the message codec adds tags and
lengths around it. Every read checks the remaining bytes first, and a
:class:`Budget` counts the messages and map entries one decode makes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..json_codec import BYTES_PER_CONTAINER, CONTAINER_ALLOWANCE, container_allowance
from ._packed import packer, unpacker

__all__ = [
    "MAX_DEPTH",
    "Budget",
    "Malformed",
    "Spans",
    "TooMany",
    "ValueCodec",
    "read_string",
    "read_varint",
    "scalar_codec",
    "skip",
    "varint",
]

#: Messages nested deeper than this do not decode (protobuf's own default).
MAX_DEPTH = 100

VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
U64 = 1 << 64
SMALL = [bytes((i,)) for i in range(128)]


class Malformed(Exception):  # noqa: N818 - internal; becomes DecodeError at the codec's edge
    """Raised inside decoding; carries the field path, built as the error unwinds."""

    def __init__(self, message: str, segment: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = [segment] if segment else []


class TooMany(Malformed):
    """Raised when a message makes more messages and map entries than its size allows."""


class Budget:
    """The messages and map entries one decode may still make: the JSON wire's allowance.

    Each message on the wire (a repeated element, every instance of a singular
    field, a well-known message) and each map entry takes one, before it is read.
    """

    __slots__ = ("left", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.left = container_allowance(size)

    @staticmethod
    def of(size: int) -> Budget:
        """The budget of a message of ``size`` bytes (a shared, unspent one when it is small)."""
        return _UNSPENT if size <= ALWAYS_WITHIN else Budget(size)

    def exceeded(self, segment: str = "") -> TooMany:
        """The error for one message or map entry too many."""
        allowed = container_allowance(self.size)
        return TooMany(
            f"more than {allowed} protobuf messages and map entries in {self.size} bytes: at "
            f"most {allowed} ({CONTAINER_ALLOWANCE} and one per {BYTES_PER_CONTAINER} bytes)",
            segment,
        )

    def take(self, segment: str = "") -> None:
        """Count one message or map entry; raise :class:`TooMany` past the allowance."""
        self.left -= 1
        if self.left < 0:
            raise self.exceeded(segment)


#: Each message or map entry takes two bytes at least (a tag, a length), so a message
#: this small cannot make more than its allowance: it needs no budget of its own.
ALWAYS_WITHIN = 2 * container_allowance(0)
while container_allowance(ALWAYS_WITHIN + 1) >= (ALWAYS_WITHIN + 1) // 2:
    ALWAYS_WITHIN += 1
# Shared by the small messages of every thread: never spent (a lost decrement is harmless).
_UNSPENT = Budget(0)
_UNSPENT.left = 1 << 62

#: Where the instances of one message field lie in the input: merged, they are one message.
Spans = list[tuple[int, int]]


def truncated(segment: str = "") -> Malformed:
    """The error for input that ends inside a field (``segment``: the field's path)."""
    return Malformed("truncated protobuf message", segment)


def varint(value: int) -> bytes:
    """The varint bytes of ``value`` (negative numbers as 64-bit two's complement)."""
    if 0 <= value < 0x80:
        return SMALL[value]
    if value < 0:
        value += U64
        if value < 0:
            raise ValueError(f"{value - U64} does not fit in 64 bits")
    elif value >= U64:
        raise ValueError(f"{value} does not fit in 64 bits")
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a varint at ``pos``; return it (as unsigned 64 bits) and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise truncated()
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & (U64 - 1), pos
        shift += 7
        if shift >= 70:
            raise Malformed("malformed protobuf varint (more than 10 bytes)")


def skip(buf: bytes, pos: int, end: int, tag: int, depth: int) -> int:
    """Skip the value of an unknown field (groups included); return the position after it."""
    wire = tag & 7
    if tag >> 3 == 0:
        raise Malformed("malformed protobuf message: field number 0")
    if wire == VARINT:
        return read_varint(buf, pos, end)[1]
    if wire == LEN:
        size, pos = read_varint(buf, pos, end)
        if size > end - pos:
            raise truncated()
        return pos + size
    if wire in (FIXED64, FIXED32):
        pos += 8 if wire == FIXED64 else 4
        if pos > end:
            raise truncated()
        return pos
    if wire == START_GROUP:
        if depth >= MAX_DEPTH:
            raise Malformed("protobuf message is nested too deeply")
        while True:
            if pos >= end:
                raise truncated()
            inner, pos = read_varint(buf, pos, end)
            if inner & 7 == END_GROUP:
                if inner >> 3 != tag >> 3:
                    raise Malformed("malformed protobuf message: mismatched group end")
                return pos
            pos = skip(buf, pos, end, inner, depth + 1)
    raise Malformed(f"malformed protobuf message: wire type {wire}")


@dataclass(frozen=True)
class ValueCodec:
    """How one value travels: its wire type, its payload, and how to read it back.

    ``write(value)`` returns the payload (for ``LEN`` values, without the
    length). ``read`` depends on the wire type: ``read(number)`` for a varint,
    ``read(buf, pos)`` for a fixed-size value of ``size`` bytes, and
    ``read(buf, pos, end, depth, budget)`` for a length-delimited one. A message
    also has ``merged(buf, spans, depth, budget)``: the one message several
    instances on the wire make, merged as protobuf's ``MergeFrom`` does.
    """

    wire: int
    write: Callable[[Any], bytes | bytearray]
    read: Callable[..., Any]
    size: int = 0
    fmt: str = ""  # struct format of a fixed-size value, for packed runs
    # A message's payload as buffers to join (an array's bytes are one, not copied).
    parts: Callable[[Any], list[bytes | bytearray | memoryview]] | None = None
    merged: Callable[[bytes, Spans, int, Budget], Any] | None = None
    # A packed run of varints in one buffer (vectorised), for a long list.
    pack: Callable[[Any], bytearray | None] | None = None
    # And a long packed run read back the same way: a list, or None if it does not read.
    unpack: Callable[[bytes, int, int], list[Any] | None] | None = None


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _signed64(value: int) -> int:
    return value - U64 if value & (1 << 63) else value


def _checked(low: int, high: int, kind: str) -> Callable[[Any], bytes]:
    def write(value: Any) -> bytes:
        if 0 <= value < 0x80:
            small: bytes = SMALL[value]
            return small
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for {kind}")
        return varint(value)

    return write


def _zigzag_write(bits: int) -> Callable[[Any], bytes]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def write(value: Any) -> bytes:
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for sint{bits}")
        return varint((value << 1) ^ (value >> (bits - 1)))

    return write


def _zigzag_read(bits: int) -> Callable[[int], int]:
    mask = (1 << bits) - 1

    def read(value: int) -> int:
        value &= mask
        return (value >> 1) ^ -(value & 1)

    return read


def _float32(value: Any) -> bytes:
    try:
        return struct.pack("<f", value)
    except OverflowError:  # as protobuf does: too large for 32 bits is infinite
        return struct.pack("<f", math.copysign(math.inf, value))


def _fixed(fmt: str, low: float, high: float) -> ValueCodec:
    packer = struct.Struct(fmt)
    pack, unpack = packer.pack, packer.unpack_from

    def write(value: Any) -> bytes:
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for {fmt}")
        return pack(value)

    wire = FIXED32 if packer.size == 4 else FIXED64
    return ValueCodec(wire, write, lambda buf, pos: unpack(buf, pos)[0], packer.size, fmt[1])


def _float(fmt: str) -> ValueCodec:
    packer = struct.Struct(fmt)
    unpack = packer.unpack_from
    write = _float32 if fmt == "<f" else packer.pack
    wire = FIXED32 if packer.size == 4 else FIXED64
    return ValueCodec(wire, write, lambda buf, pos: unpack(buf, pos)[0], packer.size, fmt[1])


def _bytes_read(buf: bytes, pos: int, end: int, depth: int, budget: Budget) -> bytes:
    return buf[pos:end]


def read_string(buf: bytes, pos: int, end: int, depth: int = 0, budget: Any = None) -> str:
    """Read a UTF-8 string payload (``depth`` and ``budget`` are unused: LEN readers' signature)."""
    try:
        return buf[pos:end].decode()
    except UnicodeDecodeError as exc:
        raise Malformed(f"a string is not UTF-8 ({exc.reason})") from None


_I32, _I64 = (-(2**31), 2**31 - 1), (-(2**63), 2**63 - 1)
_SCALARS: dict[str, ValueCodec] = {
    "int32": ValueCodec(
        VARINT, _checked(*_I32, "int32"), _signed32, pack=packer("int32"), unpack=unpacker("int32")
    ),
    "int64": ValueCodec(
        VARINT, _checked(*_I64, "int64"), _signed64, pack=packer("int64"), unpack=unpacker("int64")
    ),
    "uint32": ValueCodec(
        VARINT,
        _checked(0, 2**32 - 1, "uint32"),
        lambda v: v & 0xFFFFFFFF,
        pack=packer("uint32"),
        unpack=unpacker("uint32"),
    ),
    "uint64": ValueCodec(
        VARINT,
        _checked(0, U64 - 1, "uint64"),
        lambda v: v,
        pack=packer("uint64"),
        unpack=unpacker("uint64"),
    ),
    "sint32": ValueCodec(
        VARINT,
        _zigzag_write(32),
        _zigzag_read(32),
        pack=packer("sint32"),
        unpack=unpacker("sint32"),
    ),
    "sint64": ValueCodec(
        VARINT,
        _zigzag_write(64),
        _zigzag_read(64),
        pack=packer("sint64"),
        unpack=unpacker("sint64"),
    ),
    "bool": ValueCodec(
        VARINT,
        lambda v: b"\x01" if v else b"\x00",
        bool,
        pack=packer("bool"),
        unpack=unpacker("bool"),
    ),
    "fixed32": _fixed("<I", 0, 2**32 - 1),
    "fixed64": _fixed("<Q", 0, U64 - 1),
    "sfixed32": _fixed("<i", *_I32),
    "sfixed64": _fixed("<q", *_I64),
    "float": _float("<f"),
    "double": _float("<d"),
    "string": ValueCodec(LEN, str.encode, read_string),
    "bytes": ValueCodec(LEN, bytes, _bytes_read),
}


def scalar_codec(kind: str) -> ValueCodec | None:
    """The codec of a proto3 scalar type, or None if ``kind`` is not one."""
    return _SCALARS.get(kind)
