"""What proto3 JSON peers send that the strict decoder does not read, made readable.

protojson (grpc-gateway, connect, grpc-go, protoc's ``json_format``) writes
64-bit integers as strings, may send the original ``.proto`` field names
(``sensor_id``) instead of lowerCamelCase, ``"NaN"``/``"Infinity"`` for floats,
URL-safe or unpadded base64 and durations as ``"1.5s"``. msgspec reads one
name and one JSON kind per field, so :class:`Leniency` is the slow path beside
the strict decoder: the document is parsed to plain Python objects, walked
once along the declared types (keys renamed to the wire names, those values
turned into what the strict decoder expects) and converted with msgspec, which
checks and reports errors with the field path as on the fast path.

The walk follows the declared types only (free JSON such as ``Struct`` is not
entered), visits each value once and converts a numeric string only below a
fixed length, so it is linear in the document and bounded in memory.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
import msgspec.inspect as mi
import numpy as np
import pybase64

from .field_numbers import Number
from .names import json_name

__all__ = ["DuplicateFieldError", "Leniency", "convert", "mentions"]

# A JSON number, as protojson reads one inside a string.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_PLAIN_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
# Longer strings are never converted: no 64-bit integer or double needs more.
_MAX_NUMBER_CHARS = 64
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_URL_SAFE = str.maketrans("-_", "+/")
# A google.protobuf.Duration as protojson writes it: "1.5s", "-0.000001s".
_DURATION = re.compile(r"(-?)([0-9]{1,12})(?:\.([0-9]{1,9}))?s\Z")
# The NdArray message's .proto names, and its double fields.
_NDARRAY_NAMES = {"min_val": "minVal", "max_val": "maxVal", "original_dtype": "originalDtype"}


class DuplicateFieldError(ValueError):
    """Raised when an object names one field twice (``sensorId`` and ``sensor_id``)."""


class _Walk:
    """The state of one walk: where it is, for errors, and whether anything changed."""

    __slots__ = ("changed", "path")

    def __init__(self) -> None:
        self.changed = False
        self.path: list[str] = []

    def where(self) -> str:
        return f" - at `${''.join(self.path)}`" if self.path else ""


Normalise = Callable[[Any, _Walk], Any]


def _integer(value: Any, walk: _Walk) -> Any:
    if not isinstance(value, str) or len(value) > _MAX_NUMBER_CHARS:
        return value
    if _PLAIN_INTEGER.match(value):
        walk.changed = True
        return int(value)
    if _NUMBER.match(value):  # "1e3" or "2.0": an integer written otherwise
        number = Decimal(value)
        if number.adjusted() <= 20 and number == number.to_integral_value():
            walk.changed = True
            return int(number)
    return value


def _float(value: Any, walk: _Walk) -> Any:
    if not isinstance(value, str):
        return value
    word = _FLOAT_WORDS.get(value)
    if word is not None:
        walk.changed = True
        return word
    if len(value) <= _MAX_NUMBER_CHARS and _NUMBER.match(value):
        number = float(value)
        if math.isfinite(number):  # "1e999" is out of range, as for protojson
            walk.changed = True
            return number
    return value


def _bytes(value: Any, walk: _Walk) -> Any:
    if not isinstance(value, str):
        return value
    text = value
    if "-" in text or "_" in text:  # URL-safe, as protojson tells: not mixed with "+" or "/"
        if "+" in text or "/" in text:
            return value
        text = text.translate(_URL_SAFE)
    text += "=" * (-len(text) % 4)
    try:
        decoded = pybase64.b64decode(text, validate=True)
    except ValueError:
        return value  # the strict conversion reports it, with the path
    walk.changed = True
    return decoded


def _duration(value: Any, walk: _Walk) -> Any:
    if not isinstance(value, str) or len(value) > 24:
        return value
    match = _DURATION.match(value)
    if match is None:
        return value  # ISO 8601, as the codec writes it, or wrong: the strict conversion tells
    sign, seconds, fraction = match.groups()
    micros = int(seconds) * 1_000_000 + int((fraction or "").ljust(9, "0")) // 1000
    try:
        duration = timedelta(microseconds=-micros if sign else micros)
    except OverflowError:
        return value
    walk.changed = True
    return duration


def _object(names: dict[str, str], fields: dict[str, Normalise]) -> Normalise:
    """Normalise an object: keys in ``names`` renamed, values of ``fields`` normalised."""

    def normalise(value: Any, walk: _Walk) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        given: dict[str, Any] = value
        for key, item in given.items():
            name = names.get(key, key)
            if name in out or (name != key and name in value):
                also = key if name != key else next(k for k in value if names.get(k) == name)
                raise DuplicateFieldError(
                    f"duplicate field `{name}` (also as `{also}`){walk.where()}"
                )
            if name != key:
                walk.changed = True
            inner = fields.get(name)
            if inner is not None:
                walk.path.append(f".{name}")
                item = inner(item, walk)
                walk.path.pop()
            out[name] = item
        return out

    return normalise


def _items(inner: Normalise) -> Normalise:
    def normalise(value: Any, walk: _Walk) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for index, item in enumerate(value):
            walk.path.append(f"[{index}]")
            out.append(inner(item, walk))
            walk.path.pop()
        return out

    return normalise


def _values(inner: Normalise) -> Normalise:
    def normalise(value: Any, walk: _Walk) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for key, item in value.items():
            walk.path.append("[...]")
            out[key] = inner(item, walk)
            walk.path.pop()
        return out

    return normalise


def _positions(inners: list[Normalise | None]) -> Normalise:
    def normalise(value: Any, walk: _Walk) -> Any:
        if not isinstance(value, list) or len(value) != len(inners):
            return value
        out = []
        for index, (item, inner) in enumerate(zip(value, inners, strict=True)):
            if inner is not None:
                walk.path.append(f"[{index}]")
                item = inner(item, walk)
                walk.path.pop()
            out.append(item)
        return out

    return normalise


def _choice(
    by_tag: dict[Any, Normalise], tag_field: str | None, mapping: Normalise | None
) -> Normalise:
    """A union: an object goes to the struct its tag names, or to the only object type."""

    def normalise(value: Any, walk: _Walk) -> Any:
        if not isinstance(value, dict):
            return value
        if tag_field is not None and tag_field in value:
            chosen = by_tag.get(value[tag_field])
            return value if chosen is None else chosen(value, walk)
        return value if mapping is None else mapping(value, walk)

    return normalise


def mentions(data: bytes, quoted_names: tuple[bytes, ...]) -> bool:
    """Whether ``data`` holds one of ``quoted_names`` (a key, or a string value: then a walk)."""
    if not isinstance(data, bytes):  # a memoryview cannot find
        data = bytes(data)
    for name in quoted_names:  # noqa: SIM110 - any() of a generator costs more
        if data.find(name) >= 0:  # half the cost of ``name in data``
            return True
    return False


def _proto_names(cls: type[Any]) -> dict[str, str]:
    """The ``Number(n, name=...)`` of each field of ``cls`` that has one."""
    try:
        hints = typing.get_type_hints(typing.get_origin(cls) or cls, include_extras=True)
    except Exception:  # a hint that does not resolve names nothing
        return {}
    names = {}
    for attr, hint in hints.items():
        for meta in getattr(hint, "__metadata__", ()):
            if isinstance(meta, Number) and meta.name:
                names[attr] = meta.name
    return names


class Leniency:
    """The lenient reading of one message type, compiled once from its type."""

    __slots__ = ("_aliases", "_plans", "_root", "quoted", "underscored")

    def __init__(self, type_: Any) -> None:
        self._plans: dict[Any, Normalise | None] = {}
        self._aliases: set[str] = set()
        self._root = self._plan(mi.type_info(type_))
        quoted = [f'"{alias}"'.encode() for alias in sorted(self._aliases)]
        #: Aliases with an underscore, looked for only when the document has one.
        self.underscored = tuple(alias for alias in quoted if b"_" in alias)
        #: The other aliases, looked for in every document.
        self.quoted = tuple(alias for alias in quoted if b"_" not in alias)

    def normalise(self, document: Any) -> tuple[Any, bool]:
        """``document`` as the strict decoder expects it, and whether anything changed.

        Raise :class:`DuplicateFieldError` when an object names a field twice.
        """
        if self._root is None:
            return document, False
        walk = _Walk()
        return self._root(document, walk), walk.changed

    def _plan(self, info: mi.Type) -> Normalise | None:
        if isinstance(info, mi.Metadata):
            return self._plan(info.type)
        if isinstance(info, mi.IntType):
            return _integer
        if isinstance(info, mi.FloatType):
            return _float
        if isinstance(info, (mi.BytesType, mi.ByteArrayType, mi.MemoryViewType)):
            return _bytes
        if isinstance(info, mi.TimeDeltaType):
            return _duration
        if isinstance(info, mi.StructType):
            return self._struct(info)
        if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
            inner = self._plan(info.item_type)
            return None if inner is None else _items(inner)
        if isinstance(info, mi.TupleType):
            inners = [self._plan(item) for item in info.item_types]
            return None if all(inner is None for inner in inners) else _positions(inners)
        if isinstance(info, mi.DictType):
            inner = self._plan(info.value_type)
            return None if inner is None else _values(inner)
        if isinstance(info, mi.UnionType):
            return self._union(info)
        if isinstance(info, mi.CustomType) and (
            info.cls is np.ndarray or typing.get_origin(info.cls) is np.ndarray
        ):
            return self._ndarray()
        return None

    def _union(self, info: mi.UnionType) -> Normalise | None:
        options = [option for option in info.types if not isinstance(option, mi.NoneType)]
        if len(options) == 1:  # X | None: a null stays null
            return self._plan(options[0])
        structs = [option for option in options if isinstance(option, mi.StructType)]
        tagged = {option.tag: option for option in structs if option.tag_field is not None}
        tag_field = structs[0].tag_field if tagged else None
        by_tag = {tag: plan for tag, s in tagged.items() if (plan := self._struct(s)) is not None}
        mappings = [
            option
            for option in options
            if isinstance(option, (mi.StructType, mi.DictType, mi.CustomType))
            and not (isinstance(option, mi.StructType) and option.tag_field is not None)
        ]
        mapping = self._plan(mappings[0]) if len(mappings) == 1 else None
        if not by_tag and mapping is None:
            return None
        return _choice(by_tag, tag_field, mapping)

    def _struct(self, info: mi.StructType) -> Normalise | None:
        key = info.cls
        if key in self._plans:  # recursive messages: the plan refers to itself
            return self._plans[key]
        if info.array_like:
            self._plans[key] = None
            return None
        names: dict[str, str] = {}
        fields: dict[str, Normalise] = {}
        # Registered before the fields are planned, filled in after: a message
        # that holds itself gets this very plan, one call per level.
        plan = self._plans[key] = _object(names, fields)
        wire = {field.encode_name for field in info.fields}
        proto = _proto_names(info.cls)
        claimed: dict[str, set[str]] = {}
        for field in info.fields:
            base = proto.get(field.name) or field.name.rstrip("_") or field.name
            for alias in (field.name, base, json_name(base)):
                if alias != field.encode_name and alias not in wire:
                    claimed.setdefault(alias, set()).add(field.encode_name)
            inner = self._plan(field.type)
            if inner is not None:
                fields[field.encode_name] = inner
        for alias, owners in claimed.items():
            if len(owners) == 1:  # an alias two fields could claim is nobody's
                names[alias] = next(iter(owners))
        self._aliases.update(names)
        return plan

    def _ndarray(self) -> Normalise:
        self._aliases.update(_NDARRAY_NAMES)
        return _object(
            _NDARRAY_NAMES,
            {
                "shape": _items(_integer),
                "data": _bytes,
                "minVal": _float,
                "maxVal": _float,
                "scale": _float,
            },
        )


def convert(document: Any, type_: Any, dec_hook: Callable[[type[Any], Any], Any]) -> Any:
    """Convert a normalised ``document`` to ``type_`` as the strict decoder would."""
    return msgspec.convert(document, type_, dec_hook=dec_hook, str_keys=True)
