"""Value codecs of the well-known messages, enums and arrays on the protobuf wire.

``Timestamp`` and ``Duration`` are ``{int64 seconds = 1; int32 nanos = 2}``
(microseconds in Python); ``Struct``, ``Value`` and ``ListValue`` are the
JSON-like values of ``google/protobuf/struct.proto``; a wrapper is
``{value = 1}``; an ``numpy.ndarray`` is the ``NdArray`` message of
:data:`NDARRAY_PROTO` with the raw little-endian bytes in ``data``.

Each reads from the spans of all its instances on the wire, in order, so that
instances merge as protobuf's ``MergeFrom`` merges them; each message and map
entry takes one from the decode's budget.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from ..ndarray import check_declared_dtype, decode_ndarray, encode_ndarray
from ..wellknown import ProtoEnum
from ._packed import packer
from ._wire import (
    FIXED32,
    FIXED64,
    LEN,
    MAX_DEPTH,
    VARINT,
    Budget,
    Malformed,
    Spans,
    ValueCodec,
    read_string,
    read_varint,
    scalar_codec,
    skip,
    truncated,
    varint,
)

__all__ = ["NDARRAY_PROTO", "decode_struct", "decode_value", "enum_codec", "fields"]
__all__ += ["ndarray_codec", "wellknown_codec"]

#: The message a ``numpy.ndarray`` field travels as (written into exported ``.proto`` files).
NDARRAY_PROTO = """\
// A numpy array: dtype (a numpy name such as "float32"), shape, and the C-order
// little-endian bytes of its elements. Quantized arrays also carry how to restore them.
message NdArray {
  string dtype = 1;
  repeated uint64 shape = 2;
  bytes data = 3;
  string quantization = 4;  // "", "NONE", "FP16" or "UINT8"
  double min_val = 5;
  double max_val = 6;
  double scale = 7;
  string original_dtype = 8;
}"""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_DURATION_SECONDS = 315_576_000_000
_DOUBLE = struct.Struct("<d")


def fields(buf: bytes, pos: int, end: int, depth: int) -> Iterator[tuple[int, int, int]]:
    """Walk the fields of a message: ``(tag, start, stop)``; varints give ``(tag, value, -1)``."""
    if depth > MAX_DEPTH:
        raise Malformed("protobuf message is nested too deeply")
    while pos < end:
        tag, pos = read_varint(buf, pos, end)
        wire = tag & 7
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end)
            yield tag, value, -1
        elif wire == LEN:
            size, pos = read_varint(buf, pos, end)
            if size > end - pos:
                raise truncated()
            yield tag, pos, pos + size
            pos += size
        else:
            start = pos
            pos = skip(buf, pos, end, tag, depth)
            if wire in (FIXED64, FIXED32):
                yield tag, start, pos


def _fields_in(buf: bytes, spans: Spans, depth: int) -> Iterator[tuple[int, int, int]]:
    """The fields of several instances of one message, as if their bytes were one."""
    for pos, end in spans:
        yield from fields(buf, pos, end, depth)


MergedRead = Callable[[bytes, Spans, int, Budget], Any]


def _message(write: Callable[[Any], bytes], merged: MergedRead, **more: Any) -> ValueCodec:
    """The codec of a well-known message read by ``merged`` from the spans of its instances."""

    def read(buf: bytes, pos: int, end: int, depth: int, budget: Budget) -> Any:
        return merged(buf, [(pos, end)], depth, budget)

    return ValueCodec(LEN, write, read, merged=merged, **more)


def _len_field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | LEN) + varint(len(payload)) + payload


def _seconds_nanos(seconds: int, nanos: int) -> bytes:
    out = b""
    if seconds:
        out += b"\x08" + varint(seconds)
    if nanos:
        out += b"\x10" + varint(nanos)
    return out


def _read_seconds_nanos(buf: bytes, spans: Spans, depth: int) -> tuple[int, int]:
    seconds = nanos = 0
    for tag, value, stop in _fields_in(buf, spans, depth + 1):
        if stop == -1 and tag == 0x08:
            seconds = value - (1 << 64) if value >= 1 << 63 else value
        elif stop == -1 and tag == 0x10:
            value &= 0xFFFFFFFF
            nanos = value - (1 << 32) if value >= 1 << 31 else value
    return seconds, nanos


def _timestamp_write(value: datetime) -> bytes:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return _seconds_nanos(delta.days * 86400 + delta.seconds, delta.microseconds * 1000)


def _timestamp_read(buf: bytes, spans: Spans, depth: int, budget: Budget) -> datetime:
    seconds, nanos = _read_seconds_nanos(buf, spans, depth)
    if not 0 <= nanos <= 999_999_999:
        raise Malformed(f"Timestamp nanos {nanos} out of range")
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise Malformed(f"Timestamp seconds {seconds} out of range") from None


def _duration_write(value: timedelta) -> bytes:
    micros = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    seconds = abs(micros) // 1_000_000 * (1 if micros >= 0 else -1)
    return _seconds_nanos(seconds, (micros - seconds * 1_000_000) * 1000)


def _duration_read(buf: bytes, spans: Spans, depth: int, budget: Budget) -> timedelta:
    seconds, nanos = _read_seconds_nanos(buf, spans, depth)
    if abs(seconds) > _MAX_DURATION_SECONDS or abs(nanos) > 999_999_999 or seconds * nanos < 0:
        raise Malformed(f"Duration {seconds}s {nanos}ns out of range")
    return timedelta(seconds=seconds, microseconds=int(nanos / 1000))


def _value_write(value: Any) -> bytes:
    if value is None:
        return b"\x08\x00"
    if value is True or value is False:
        return b"\x20\x01" if value else b"\x20\x00"
    if isinstance(value, int | float):
        return b"\x11" + _DOUBLE.pack(value)
    if isinstance(value, str):
        return _len_field(3, value.encode())
    if isinstance(value, dict):
        return _len_field(5, _struct_write(value))
    if isinstance(value, list | tuple):
        return _len_field(6, _list_write(value))
    raise TypeError(f"cannot encode {type(value).__name__} as a google.protobuf.Value")


def _struct_write(value: dict[str, Any]) -> bytes:
    entries = [
        _len_field(1, _len_field(1, key.encode()) + _len_field(2, _value_write(item)))
        for key, item in value.items()
    ]
    return b"".join(entries)


def _list_write(value: list[Any] | tuple[Any, ...]) -> bytes:
    return b"".join([_len_field(1, _value_write(item)) for item in value])


def _value_read(buf: bytes, spans: Spans, depth: int, budget: Budget) -> Any:
    """A ``Value``: the last kind wins; a struct or list given twice in a row merges."""
    result: Any = None
    kind = 0  # the tag of a struct or list kind, and its instances
    merging: Spans = []
    for tag, start, stop in _fields_in(buf, spans, depth + 1):
        if tag in (0x2A, 0x32):
            budget.take()
            if tag != kind:
                kind, merging = tag, []
            merging.append((start, stop))
            continue
        if tag == 0x08 and stop == -1:
            result = None
        elif tag == 0x11:
            result = _DOUBLE.unpack_from(buf, start)[0]
        elif tag == 0x1A:
            result = read_string(buf, start, stop)
        elif tag == 0x20 and stop == -1:
            result = start != 0
        else:
            continue
        kind = 0
    if kind == 0x2A:
        return _struct_read(buf, merging, depth + 1, budget)
    if kind == 0x32:
        return _list_read(buf, merging, depth + 1, budget)
    return result


def _struct_read(buf: bytes, spans: Spans, depth: int, budget: Budget) -> dict[str, Any]:
    """A ``Struct``: a map of ``Value`` (the last entry of a key wins)."""
    result: dict[str, Any] = {}
    for tag, start, stop in _fields_in(buf, spans, depth + 1):
        if tag != 0x0A:
            continue
        budget.take()
        key, values = "", []
        for inner, istart, istop in fields(buf, start, stop, depth + 2):
            if inner == 0x0A:
                key = read_string(buf, istart, istop)
            elif inner == 0x12:
                budget.take()
                values.append((istart, istop))
        try:
            result[key] = _value_read(buf, values, depth + 2, budget) if values else None
        except Malformed as exc:
            exc.path.append(f"[{key!r}]")
            raise
    return result


def _list_read(buf: bytes, spans: Spans, depth: int, budget: Budget) -> list[Any]:
    """A ``ListValue``: its values, instances after instances."""
    result: list[Any] = []
    for tag, start, stop in _fields_in(buf, spans, depth + 1):
        if tag == 0x0A:
            try:
                budget.take()
                result.append(_value_read(buf, [(start, stop)], depth + 1, budget))
            except Malformed as exc:
                exc.path.append(f"[{len(result)}]")
                raise
    return result


def decode_value(data: bytes) -> Any:
    """The JSON value of a ``google.protobuf.Value``'s bytes (bounded as a message is)."""
    return _value_read(data, [(0, len(data))], 0, Budget(len(data)))


def decode_struct(data: bytes) -> dict[str, Any]:
    """The JSON object of a ``google.protobuf.Struct``'s bytes (bounded as a message is)."""
    return _struct_read(data, [(0, len(data))], 0, Budget(len(data)))


_ZEROS: dict[str, Any] = {"double": 0.0, "float": 0.0, "bool": False, "string": "", "bytes": b""}


def _wrapper(kind: str) -> ValueCodec:
    inner = scalar_codec(kind)
    assert inner is not None
    tag = bytes((1 << 3 | inner.wire,))
    zero = _ZEROS.get(kind, 0)

    def write(value: Any) -> bytes:
        if not value:
            return b""
        payload = inner.write(value)
        return tag + (varint(len(payload)) + payload if inner.wire == LEN else payload)

    def read(buf: bytes, spans: Spans, depth: int, budget: Budget) -> Any:
        result = zero
        for found, start, stop in _fields_in(buf, spans, depth + 1):
            if found != tag[0]:
                continue
            if inner.wire == VARINT:
                result = inner.read(start)
            elif inner.wire == LEN:
                result = inner.read(buf, start, stop, depth, budget)
            else:
                result = inner.read(buf, start)
        return result

    return _message(write, read)


_WELL_KNOWN: dict[str, ValueCodec] = {
    "google.protobuf.Timestamp": _message(_timestamp_write, _timestamp_read),
    "google.protobuf.Duration": _message(_duration_write, _duration_read),
    "google.protobuf.Value": _message(_value_write, _value_read),
    "google.protobuf.Struct": _message(_struct_write, _struct_read),
    "google.protobuf.ListValue": _message(_list_write, _list_read),
}


def wellknown_codec(kind: str) -> ValueCodec | None:
    """The codec of a well-known message by its full name (wrappers included), if any."""
    if kind in _WELL_KNOWN:
        return _WELL_KNOWN[kind]
    if (
        kind.startswith("google.protobuf.")
        and kind.endswith("Value")
        and kind != "google.protobuf.Value"
    ):
        from .schema import WRAPPERS

        return _wrapper(WRAPPERS[kind])
    return None


def enum_codec(enum_type: type[ProtoEnum]) -> ValueCodec:
    """An enum as its number; a number the enum does not declare does not decode."""
    numbers = enum_type.__numbers__
    int32 = scalar_codec("int32")
    assert int32 is not None

    def write(value: Any) -> bytes | bytearray:
        return int32.write(getattr(value, "number", value))

    def read(value: int) -> ProtoEnum:
        member = numbers.get(int32.read(value))
        if member is None:
            raise Malformed(f"Invalid enum value {int32.read(value)} for {enum_type.__name__}")
        return member  # type: ignore[no-any-return]

    return ValueCodec(VARINT, write, read, pack=packer("enum"))


_NDARRAY_STRINGS = {0x0A: "dtype", 0x22: "quantization", 0x42: "originalDtype"}
_NDARRAY_DOUBLES = {0x29: "minVal", 0x31: "maxVal", 0x39: "scale"}


def _ndarray_write(array: np.ndarray[Any, Any]) -> bytes:
    return b"".join(_ndarray_parts(array))


def _ndarray_parts(array: np.ndarray[Any, Any]) -> list[bytes | bytearray | memoryview]:
    wire = encode_ndarray(array)
    shape = b"".join(varint(n) for n in wire["shape"])
    out: list[bytes | bytearray | memoryview] = [_len_field(1, wire["dtype"].encode())]
    if shape:
        out.append(_len_field(2, shape))
    data = wire["data"]  # the array's own buffer, copied once: by the message's join
    out += [b"\x1a" + varint(len(data)), data]
    if "quantization" in wire:
        out.append(_len_field(4, wire["quantization"].encode()))
        for number, key in ((5, "minVal"), (6, "maxVal"), (7, "scale")):
            if key in wire:
                out.append(bytes((number << 3 | FIXED64,)) + _DOUBLE.pack(wire[key]))
        out.append(_len_field(8, wire["originalDtype"].encode()))
    return out


def ndarray_codec(declared: Any) -> ValueCodec:
    """A ``numpy.ndarray`` field: the ``NdArray`` message; decoded as a view of the input bytes."""
    check: Callable[[Any], Any] = (
        (lambda array: array)
        if declared is np.ndarray
        else (lambda a: check_declared_dtype(a, declared))
    )

    def read(buf: bytes, spans: Spans, depth: int, budget: Budget) -> np.ndarray[Any, Any]:
        wire: dict[str, Any] = {"dtype": "", "shape": [], "data": b""}
        for tag, start, stop in _fields_in(buf, spans, depth + 1):
            if tag in _NDARRAY_STRINGS:
                wire[_NDARRAY_STRINGS[tag]] = read_string(buf, start, stop)
            elif tag == 0x1A:
                wire["data"] = memoryview(buf)[start:stop]  # no copy: the array is a view
            elif tag == 0x12:  # packed shape
                while start < stop:
                    size, start = read_varint(buf, start, stop)
                    wire["shape"].append(size)
            elif tag == 0x10:
                wire["shape"].append(start)
            elif tag in _NDARRAY_DOUBLES:
                wire[_NDARRAY_DOUBLES[tag]] = _DOUBLE.unpack_from(buf, start)[0]
        if wire.get("quantization") == "":
            del wire["quantization"]
        try:
            return check(decode_ndarray(wire))  # type: ignore[no-any-return]
        except ValueError as exc:
            raise Malformed(str(exc)) from None

    return _message(_ndarray_write, read, parts=_ndarray_parts)
