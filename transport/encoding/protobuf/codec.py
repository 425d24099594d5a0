"""The protobuf codec: the binary wire of the same declarations as the JSON codec.

:class:`ProtobufCodec` implements the codec contract (``name``, ``encode``,
``decode``). Its tables are compiled once per message type from
:func:`~transport.encoding.protobuf.schema.schema_of`: a reader per field tag and a
writer per field, closures over precomputed tags. Decoding checks every length
against the bytes left before slicing, so a repeated field cannot make more
elements than it has bytes; unknown fields are skipped; nesting is bounded by
:data:`MAX_DEPTH`. A bad message raises :class:`~transport.encoding.json_codec.DecodeError`
naming the field path (``... - at `$.items[2].name```), as the JSON codec does.

A message may make as many messages and map entries as the JSON wire's
allowance gives its size (:func:`~transport.encoding.json_codec.container_allowance`),
counted before each is read: one more is :class:`~transport.errors.DecodeLimitError`
(RESOURCE_EXHAUSTED) with the path where it stopped. The instances of a singular
message field merge, and a oneof keeps its last member, as protobuf parsers do.
"""

from __future__ import annotations

import operator
import re
import struct
from collections.abc import Callable
from math import copysign
from typing import Any, ClassVar, Generic, TypeVar

import msgspec

from ...errors import DecodeError, DecodeLimitError
from ._fields import (
    PENDING,
    Buffer,
    Reader,
    Writer,
    map_reader,
    map_writer,
    repeated_readers,
    repeated_writer,
    singular_reader,
    singular_writer,
)
from ._wellknown import enum_codec, ndarray_codec, wellknown_codec
from ._wire import (
    LEN,
    MAX_DEPTH,
    Budget,
    Malformed,
    Spans,
    TooMany,
    ValueCodec,
    read_varint,
    scalar_codec,
    skip,
)
from .schema import (
    COMPILING,
    MESSAGE_KINDS,
    WRAPPERS,
    FieldSchema,
    MessageSchema,
    TypeSchema,
    schema_of,
    zero_value,
)

__all__ = ["MAX_DEPTH", "ProtobufCodec"]

T = TypeVar("T")


# When a field is left out on encode: None, a zero value (0, "", [], ...), or +0.0.
_BY_ZERO, _BY_NONE, _BY_ZERO_FLOAT = 0, 1, 2


# A singular message field: its attribute, path segment, readers of one instance and of
# several, and the depth they add (1 for a declared message, read without its codec's call).
_Deferred = tuple[str, str, Callable[..., Any], Callable[..., Any], int]


class _Compiled:
    """The reader table and writer plan of one message type."""

    __slots__ = ("build", "deferred", "getter", "plan", "readers", "type")

    def __init__(self, message_type: type[Any]) -> None:
        self.type = message_type
        self.readers: dict[int, Reader] = {}
        self.plan: tuple[tuple[int, Writer], ...] = ()
        self.getter: Callable[[Any], tuple[Any, ...]] = lambda message: ()
        self.build: Callable[[dict[str, Any]], Any] = lambda values: message_type(**values)
        # Singular message fields: their readers keep spans, read when this message is built.
        self.deferred: tuple[_Deferred, ...] = ()

    def decode(self, buf: bytes, pos: int, end: int, depth: int, budget: Budget) -> Any:
        """Read the message between ``pos`` and ``end``."""
        if depth > MAX_DEPTH:
            raise Malformed("protobuf message is nested too deeply")
        readers = self.readers
        values: dict[str, Any] = {}
        while pos < end:
            tag = buf[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = read_varint(buf, pos, end)
            reader = readers.get(tag)
            if reader is None:
                pos = skip(buf, pos, end, tag, depth)
            else:
                pos = reader(buf, pos, end, values, depth, budget)
        if PENDING in values:
            del values[PENDING]
            self._read_deferred(buf, values, depth, budget)
        return self.build(values)

    def merged(self, buf: bytes, spans: Spans, depth: int, budget: Budget) -> Any:
        """Read the one message several instances make: each span read in turn into it."""
        if depth > MAX_DEPTH:
            raise Malformed("protobuf message is nested too deeply")
        readers = self.readers
        values: dict[str, Any] = {}
        for pos, end in spans:
            while pos < end:
                tag, pos = read_varint(buf, pos, end)
                reader = readers.get(tag)
                if reader is None:
                    pos = skip(buf, pos, end, tag, depth)
                else:
                    pos = reader(buf, pos, end, values, depth, budget)
        if PENDING in values:
            del values[PENDING]
            self._read_deferred(buf, values, depth, budget)
        return self.build(values)

    def _read_deferred(
        self, buf: bytes, values: dict[str, Any], depth: int, budget: Budget
    ) -> None:
        for attr, segment, read, merged, step in self.deferred:
            spans = values.get(attr)
            if spans is None:
                continue
            try:
                if type(spans) is tuple:  # one instance, the usual case
                    values[attr] = read(buf, spans[0], spans[1], depth + step, budget)
                else:
                    values[attr] = merged(buf, spans, depth + step, budget)
            except Malformed as exc:
                exc.path.append(segment)
                raise

    def encode(self, message: Any) -> bytes:
        """The bytes of ``message`` (without tag or length)."""
        return b"".join(self.parts(message))

    def parts(self, message: Any) -> list[Buffer]:
        """The fields of ``message`` as buffers to join (without tag or length)."""
        out: list[Buffer] = []
        for (presence, write), value in zip(self.plan, self.getter(message), strict=True):
            if presence == _BY_NONE:
                if value is None:
                    continue
            elif not value and (presence == _BY_ZERO or copysign(1.0, value) > 0):
                continue  # -0.0 is not the zero value: it travels, as upb writes it
            write(value, out)
        return out


_COMPILED: dict[type[Any], _Compiled] = {}


def _compiled(message_type: type[Any]) -> _Compiled:
    found = _COMPILED.get(message_type)
    if found is not None:
        return found
    with COMPILING:
        if message_type in _COMPILED:
            return _COMPILED[message_type]
        schema = schema_of(message_type)
        compiled = _COMPILED[message_type] = _Compiled(message_type)
        try:
            _fill(compiled, schema)
        except BaseException:
            del _COMPILED[message_type]
            raise
        return compiled


def _value_codec(value: TypeSchema) -> ValueCodec:
    found = scalar_codec(value.kind) or wellknown_codec(value.kind)
    if found is not None:
        return found
    if value.kind == "enum":
        assert value.enum is not None
        return enum_codec(value.enum)
    if value.kind == "ndarray":
        return ndarray_codec(value.declared)
    assert value.message is not None
    nested = _compiled(value.message.type)

    def read(buf: bytes, pos: int, end: int, depth: int, budget: Budget) -> Any:
        return nested.decode(buf, pos, end, depth + 1, budget)

    def merged(buf: bytes, spans: Spans, depth: int, budget: Budget) -> Any:
        return nested.merged(buf, spans, depth + 1, budget)

    return ValueCodec(LEN, nested.encode, read, parts=nested.parts, merged=merged)


# The range each integer kind decodes to, whatever the bytes: bounds as wide need no check.
_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sfixed32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "fixed32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "sfixed64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "fixed64": (0, 2**64 - 1),
}


def _implied(constraint: msgspec.Meta, kind: str) -> bool:
    """Whether the wire type alone keeps a decoded value within ``constraint``."""
    if kind not in _RANGES or constraint.gt is not None or constraint.lt is not None:
        return False
    others = (constraint.min_length, constraint.max_length, constraint.pattern)
    low, high = _RANGES[kind]
    return (
        all(other is None for other in others)
        and (constraint.ge is None or constraint.ge <= low)
        and (constraint.le is None or constraint.le >= high)
    )


def _check(constraint: msgspec.Meta, segment: str) -> Callable[[Any], None]:
    """Check a decoded value against msgspec ``Meta`` bounds, as JSON decoding does."""
    pattern = re.compile(constraint.pattern) if constraint.pattern else None

    def check(value: Any) -> None:
        if constraint.ge is not None and value < constraint.ge:
            raise Malformed(f"Expected a value >= {constraint.ge}", segment)
        if constraint.gt is not None and value <= constraint.gt:
            raise Malformed(f"Expected a value > {constraint.gt}", segment)
        if constraint.le is not None and value > constraint.le:
            raise Malformed(f"Expected a value <= {constraint.le}", segment)
        if constraint.lt is not None and value >= constraint.lt:
            raise Malformed(f"Expected a value < {constraint.lt}", segment)
        if constraint.min_length is not None and len(value) < constraint.min_length:
            raise Malformed(f"Expected a length >= {constraint.min_length}", segment)
        if constraint.max_length is not None and len(value) > constraint.max_length:
            raise Malformed(f"Expected a length <= {constraint.max_length}", segment)
        if pattern is not None and not pattern.search(value):
            raise Malformed(f"Expected a string matching {constraint.pattern!r}", segment)

    return check


def _fill(compiled: _Compiled, schema: MessageSchema) -> None:
    plan: list[tuple[int, Writer]] = []
    tuples: list[str] = []
    required: list[tuple[str, FieldSchema]] = []
    checks: list[tuple[str, Callable[[Any], None]]] = []
    deferred: list[_Deferred] = []
    others = _oneof_others(schema)
    for field in schema.fields:
        segment = f".{field.path_name}"
        codec = _value_codec(field.value)
        key = _value_codec(field.key) if field.key is not None else None
        readers = compiled.readers
        if field.label == "map":
            assert key is not None and field.key is not None
            zeros = (
                zero_value(_as_singular(field, field.key)),
                zero_value(_as_singular(field, field.value)),
            )
            readers[field.number << 3 | LEN] = map_reader(field.attr, segment, key, codec, zeros)
            write = map_writer(field.number, key, codec)
        elif field.label == "repeated":
            one, packed = repeated_readers(field.attr, segment, codec)
            readers[field.number << 3 | codec.wire] = one
            if packed is not None:
                readers[field.number << 3 | LEN] = packed
            write = repeated_writer(field.number, codec)
        else:
            readers[field.number << 3 | codec.wire] = singular_reader(
                field.attr, segment, codec, field.value.kind, others.get(field.attr, ())
            )
            if codec.merged is not None:
                nested = _COMPILED.get(field.value.message.type) if field.value.message else None
                if nested is not None and field.value.kind == "message":  # one call less
                    deferred.append((field.attr, segment, nested.decode, nested.merged, 1))
                else:
                    deferred.append((field.attr, segment, codec.read, codec.merged, 0))
            implicit = field.label == "singular"
            write = singular_writer(field.number, codec, field.value.kind, implicit=implicit)
        # Messages and wrappers are present unless None; other fields unless zero or empty.
        presence = field.label == "optional" or (
            field.label == "singular"
            and (field.value.kind in MESSAGE_KINDS or field.value.kind in WRAPPERS)
        )
        if presence:
            kind = _BY_NONE
        elif field.label == "singular" and field.value.kind in ("float", "double"):
            kind = _BY_ZERO_FLOAT
        else:
            kind = _BY_ZERO
        plan.append((kind, write))
        if field.as_tuple:
            tuples.append(field.attr)
        if field.required:
            required.append((field.attr, field))
        checks.extend(
            (field.attr, _check(c, segment))
            for c in field.constraints
            if not _implied(c, field.value.kind)
        )
    compiled.plan = tuple(plan)
    compiled.deferred = tuple(deferred)
    attrs = [field.attr for field in schema.fields]
    if len(attrs) == 1:
        single = operator.attrgetter(attrs[0])
        compiled.getter = lambda message: (single(message),)
    elif attrs:
        compiled.getter = operator.attrgetter(*attrs)
    compiled.build = _builder(schema.type, tuples, required, checks)


def _oneof_others(schema: MessageSchema) -> dict[str, tuple[str, ...]]:
    """For each oneof member, the other members: reading one clears them (the last wins)."""
    groups: dict[str, list[str]] = {}
    for field in schema.fields:
        if field.oneof is not None:
            groups.setdefault(field.oneof, []).append(field.attr)
    return {
        attr: tuple(other for other in members if other != attr)
        for members in groups.values()
        for attr in members
    }


def _as_singular(field: FieldSchema, value: TypeSchema) -> FieldSchema:
    return FieldSchema(
        field.attr, field.path_name, field.proto_name, field.number, "singular", value
    )


def _builder(
    message_type: type[Any],
    tuples: list[str],
    required: list[tuple[str, FieldSchema]],
    checks: list[tuple[str, Callable[[Any], None]]],
) -> Callable[[dict[str, Any]], Any]:
    def build(values: dict[str, Any]) -> Any:
        for attr in tuples:
            if attr in values:
                values[attr] = tuple(values[attr])
        for attr, field in required:
            if attr not in values:
                values[attr] = zero_value(field)
        for attr, check in checks:
            if attr in values:
                check(values[attr])
        try:
            return message_type(**values)
        except (ValueError, TypeError, msgspec.MsgspecError) as exc:  # from __post_init__
            raise Malformed(str(exc)) from None

    return build


class ProtobufCodec(Generic[T]):
    """Encode and decode one message type as protobuf (the registered codec ``protobuf``).

    Every field of the type (and of the messages it holds) needs a
    :class:`~transport.encoding.protobuf.Number`; the tables are built here, once.
    """

    name: ClassVar[str] = "protobuf"

    __slots__ = ("_compiled", "type")

    def __init__(self, type_: type[T]) -> None:
        self.type = type_
        self._compiled = _compiled(type_)

    def encode(self, message: T) -> bytes:
        """Return the protobuf bytes of ``message``."""
        try:
            return self._compiled.encode(message)
        except (ValueError, TypeError, AttributeError, struct.error) as exc:
            raise ValueError(f"cannot encode {type(message).__name__} as protobuf: {exc}") from None

    def decode(self, data: bytes | memoryview) -> T:
        """Return the message in ``data``; raise :class:`DecodeError` naming the field path."""
        if not isinstance(data, bytes):
            data = bytes(data)
        try:
            return self._compiled.decode(data, 0, len(data), 0, Budget.of(len(data)))  # type: ignore[no-any-return]
        except Malformed as exc:
            path = "".join(reversed(exc.path))
            error = DecodeLimitError if isinstance(exc, TooMany) else DecodeError
            raise error(f"{exc.message} - at `${path}`" if path else exc.message) from None
        except RecursionError:
            raise DecodeError("protobuf message is nested too deeply") from None
