"""Per-field readers and writers: closures over precomputed tags, built once per field.

A reader takes ``(buf, pos, end, values, depth, budget)``, stores the field's
value in ``values`` under its Python name and returns the position after it; a
writer takes ``(value, out)`` and appends the tagged field to ``out``. Errors
append the field's path segment as they pass.

The protobuf merge rules hold: the last value of a scalar wins; the instances
of a singular message field are one message (their spans are kept, and read
together when the message that holds them is built); a oneof keeps its last
member; a map keeps the last entry of a key. Every message and map entry takes
one from the decode's :class:`~._wire.Budget` before it is read.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable
from typing import Any

from ._wellknown import fields
from ._wire import (
    LEN,
    SMALL,
    U64,
    VARINT,
    Budget,
    Malformed,
    Spans,
    ValueCodec,
    read_varint,
    truncated,
    varint,
)

__all__ = [
    "Buffer",
    "Reader",
    "Writer",
    "map_reader",
    "map_writer",
    "repeated_readers",
    "repeated_writer",
]
__all__ += ["PENDING", "read_spans", "singular_reader", "singular_writer"]

#: The key (no attribute's name) that says a message field waits to be read when its
#: holder is built: a message without one skips the look at each of its message fields.
PENDING = ""

#: From this many elements, a packed run of varints is laid out by numpy.
_VECTORISED = 64

Reader = Callable[[bytes, int, int, dict[str, Any], int, Budget], int]
Buffer = bytes | bytearray | memoryview
Writer = Callable[[Any, list[Buffer]], None]


def read_len(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a length prefix; return where the payload starts and stops (checked against end)."""
    if pos < end and buf[pos] < 0x80:
        size = buf[pos]
        pos += 1
    else:
        size, pos = read_varint(buf, pos, end)
    if size > end - pos:
        raise truncated()
    return pos, pos + size


def _read_len_at(buf: bytes, pos: int, end: int, segment: str) -> tuple[int, int]:
    try:
        return read_len(buf, pos, end)
    except Malformed as exc:
        exc.path.append(segment)
        raise


def singular_reader(
    attr: str, segment: str, codec: ValueCodec, kind: str, others: tuple[str, ...] = ()
) -> Reader:
    """The reader of a field that holds one value (the last one on the wire wins).

    ``others``: the other members of the field's oneof, which it clears.
    """
    if others and codec.merged is None:
        return _oneof_member(singular_reader(attr, segment, codec, kind), others)
    read = codec.read
    if kind == "string":

        def read_string(
            b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget
        ) -> int:
            if pos < end and b[pos] < 0x80:
                stop = pos + 1 + b[pos]
                pos += 1
                if stop > end:
                    raise truncated(segment)
            else:
                pos, stop = _read_len_at(b, pos, end, segment)
            try:
                vals[attr] = b[pos:stop].decode()
            except UnicodeDecodeError as exc:
                raise Malformed(f"a string is not UTF-8 ({exc.reason})", segment) from None
            return stop

        return read_string
    if kind in ("int64", "uint64"):  # the commonest numbers, converted inline
        signed = kind == "int64"

        def read_int64(
            b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget
        ) -> int:
            if pos < end and b[pos] < 0x80:
                vals[attr] = b[pos]
                return pos + 1
            number, pos = read_varint(b, pos, end)
            vals[attr] = number - U64 if signed and number >> 63 else number
            return pos

        return read_int64
    if codec.wire == VARINT:

        def read_number(
            b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget
        ) -> int:
            if pos < end and b[pos] < 0x80:
                number = b[pos]
                pos += 1
            else:
                number, pos = read_varint(b, pos, end)
            try:
                vals[attr] = read(number)
            except Malformed as exc:
                exc.path.append(segment)
                raise
            return pos

        return read_number
    if codec.merged is not None:  # a message: its instances are read when the holder is built

        def read_instance(
            b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget
        ) -> int:
            if pos < end and b[pos] < 0x80:  # a short length, inline
                stop = pos + 1 + b[pos]
                pos += 1
                if stop > end:
                    raise truncated(segment)
            else:
                pos, stop = _read_len_at(b, pos, end, segment)
            bg.left -= 1
            if bg.left < 0:
                raise bg.exceeded(segment)
            for other in others:  # a oneof member (a message)
                vals.pop(other, None)
            found = vals.get(attr)
            if found is None:
                vals[attr] = (pos, stop)
                vals[PENDING] = True
            elif type(found) is tuple:
                vals[attr] = [found, (pos, stop)]
            else:
                found.append((pos, stop))
            return stop

        return read_instance
    if codec.wire == LEN:

        def read_payload(
            b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget
        ) -> int:
            try:
                pos, stop = read_len(b, pos, end)
                vals[attr] = read(b, pos, stop, d, bg)
            except Malformed as exc:
                exc.path.append(segment)
                raise
            return stop

        return read_payload
    size = codec.size
    unpack = struct.Struct(f"<{codec.fmt}").unpack_from

    def read_fixed(b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget) -> int:
        stop = pos + size
        if stop > end:
            raise truncated(segment)
        vals[attr] = unpack(b, pos)[0]
        return stop

    return read_fixed


def read_spans(
    codec: ValueCodec, buf: bytes, spans: tuple[int, int] | Spans, d: int, bg: Budget
) -> Any:
    """The message the instances of a singular field make (kept by its reader as spans)."""
    if isinstance(spans, tuple):
        return codec.read(buf, spans[0], spans[1], d, bg)
    assert codec.merged is not None
    return codec.merged(buf, spans, d, bg)


def _oneof_member(read: Reader, others: tuple[str, ...]) -> Reader:
    """The reader of a oneof member: it clears the other members (the last one wins)."""

    def read_member(b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget) -> int:
        for other in others:
            vals.pop(other, None)
        return read(b, pos, end, vals, d, bg)

    return read_member


def repeated_readers(attr: str, segment: str, codec: ValueCodec) -> tuple[Reader, Reader | None]:
    """The reader of one element and, for scalars, of a packed run (both are accepted)."""
    read, size, wire, unpack = codec.read, codec.size, codec.wire, codec.unpack
    counted = codec.merged is not None  # messages count against the budget, scalars do not

    def read_one(b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget) -> int:
        found: list[Any] | None = vals.get(attr)
        if found is None:
            found = vals[attr] = []
        try:
            if wire == LEN:
                pos, stop = read_len(b, pos, end)
                if counted:
                    bg.left -= 1
                    if bg.left < 0:
                        raise bg.exceeded()
                found.append(read(b, pos, stop, d, bg))
                return stop
            if wire == VARINT:
                number, pos = read_varint(b, pos, end)
                found.append(read(number))
                return pos
            if pos + size > end:
                raise truncated()
            found.append(read(b, pos))
            return pos + size
        except Malformed as exc:
            exc.path.append(f"{segment}[{len(found)}]")
            raise

    if wire == LEN:
        return read_one, None

    def read_packed(b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget) -> int:
        pos, stop = _read_len_at(b, pos, end, segment)
        found: list[Any] | None = vals.get(attr)
        if found is None:
            found = vals[attr] = []
        if wire != VARINT:
            if (stop - pos) % size:
                raise Malformed("malformed packed field", segment)
            found.extend(struct.unpack_from(f"<{(stop - pos) // size}{codec.fmt}", b, pos))
            return stop
        if unpack is not None and stop - pos >= _VECTORISED:
            values = unpack(b, pos, stop)
            if values is not None:
                found.extend(values)
                return stop
        try:
            while pos < stop:  # each element takes at least one byte
                number, pos = read_varint(b, pos, stop)
                found.append(read(number))
        except Malformed as exc:
            exc.path.append(f"{segment}[{len(found)}]")
            raise
        return stop

    return read_one, read_packed


def _read_part(codec: ValueCodec, b: bytes, start: int, stop: int, d: int, bg: Budget) -> Any:
    if codec.wire == VARINT:
        return codec.read(start)
    return codec.read(b, start, stop, d, bg) if codec.wire == LEN else codec.read(b, start)


def map_reader(
    attr: str, segment: str, key: ValueCodec, value: ValueCodec, zeros: tuple[Any, Any]
) -> Reader:
    """The reader of one map entry (``key = 1``, ``value = 2``; either may be absent).

    A message value given twice in one entry is one message, merged; a key
    given in two entries keeps the last entry.
    """
    key_tag, value_tag = 1 << 3 | key.wire, 2 << 3 | value.wire
    message = value.merged is not None

    def read_entry(b: bytes, pos: int, end: int, vals: dict[str, Any], d: int, bg: Budget) -> int:
        pos, stop = _read_len_at(b, pos, end, segment)
        found: dict[Any, Any] | None = vals.get(attr)
        if found is None:
            found = vals[attr] = {}
        entry_key, entry_value = zeros
        spans: Spans = []
        try:
            bg.take()
            for tag, start, finish in fields(b, pos, stop, d + 1):
                if tag == key_tag:
                    entry_key = _read_part(key, b, start, finish, d, bg)
                elif tag != value_tag:
                    continue
                elif message:
                    bg.take()
                    spans.append((start, finish))
                else:
                    entry_value = _read_part(value, b, start, finish, d, bg)
            if spans:
                entry_value = read_spans(value, b, spans[0] if len(spans) == 1 else spans, d, bg)
        except Malformed as exc:
            exc.path.append(f"{segment}[...]")
            raise
        found[entry_key] = entry_value
        return stop

    return read_entry


def _tagged(number: int, codec: ValueCodec) -> Callable[[Any], bytes]:
    """The bytes of one tagged value, length included."""
    tag, write = varint(number << 3 | codec.wire), codec.write
    if codec.wire != LEN:
        return lambda value: tag + write(value)

    def tagged(value: Any) -> bytes:
        payload = write(value)
        return tag + varint(len(payload)) + payload

    return tagged


def singular_writer(number: int, codec: ValueCodec, kind: str, *, implicit: bool) -> Writer:
    """The writer of a field of one value; an ``implicit`` enum leaves its zero member out."""
    tag, write = varint(number << 3 | codec.wire), codec.write
    if kind == "string":

        def write_string(value: Any, out: list[Buffer]) -> None:
            data = value.encode()
            out.append(tag + varint(len(data)) if len(data) > 0x7F else tag + SMALL[len(data)])
            out.append(data)

        return write_string
    if kind in ("int32", "int64", "uint32", "uint64", "bool"):  # small ones are their own varint

        def write_number(value: Any, out: list[Buffer]) -> None:
            out.append(tag + SMALL[value] if 0 <= value < 0x80 else tag + write(value))

        return write_number
    if kind == "enum" and implicit:

        def write_enum(value: Any, out: list[Buffer]) -> None:
            if getattr(value, "number", value):
                out.append(tag + write(value))

        return write_enum
    if codec.wire != LEN:

        def write_scalar(value: Any, out: list[Buffer]) -> None:
            out.append(tag + write(value))

        return write_scalar

    if codec.parts is not None:  # a message: its parts join once, at the top
        parts_of = codec.parts

        def write_parts(value: Any, out: list[Buffer]) -> None:
            parts = parts_of(value)
            out.append(tag + varint(sum(map(len, parts))))
            out += parts

        return write_parts

    def write_payload(value: Any, out: list[Buffer]) -> None:
        payload = write(value)
        out.append(tag + varint(len(payload)))
        out.append(payload)

    return write_payload


def repeated_writer(number: int, codec: ValueCodec) -> Writer:
    """Messages, strings and bytes one tagged element each; scalars packed into one run."""
    if codec.wire == LEN:
        one = _tagged(number, codec)

        def write_each(value: Any, out: list[Buffer]) -> None:
            out += map(one, value)

        return write_each
    packed_tag, write, fmt, pack = varint(number << 3 | LEN), codec.write, codec.fmt, codec.pack

    def write_packed(value: Any, out: list[Buffer]) -> None:
        payload: Buffer | None = b""
        # Out of range: element by element below, which says why (or clamps a float).
        with contextlib.suppress(struct.error, OverflowError):
            payload = struct.pack(f"<{len(value)}{fmt}", *value) if fmt else b""
        if not payload and pack is not None and len(value) >= _VECTORISED:
            payload = pack(value)  # one buffer, not one bytes per element
        payload = payload or b"".join([write(item) for item in value])
        out.append(packed_tag + varint(len(payload)))
        out.append(payload)

    return write_packed


def map_writer(number: int, key: ValueCodec, value: ValueCodec) -> Writer:
    """Each entry as a message of ``key = 1`` and ``value = 2``."""
    write_key, write_value = _tagged(1, key), _tagged(2, value)
    tag = varint(number << 3 | LEN)

    def write_map(items: Any, out: list[Buffer]) -> None:
        for item_key, item in items.items():
            entry = write_key(item_key) + write_value(item)
            out.append(tag + varint(len(entry)))
            out.append(entry)

    return write_map
