"""Protocol Buffers well-known types, enums and ``oneof``, without protobuf.

The proto3 JSON mapping gives each of them a plain JSON form, so each is a
plain Python type here:

- ``google.protobuf.Empty`` is :class:`Empty`: ``{}``.
- ``google.protobuf.Timestamp`` is :data:`Timestamp`: a timezone-aware
  ``datetime``, an RFC 3339 string on the wire (``"2026-11-22T10:00:00Z"``).
- ``google.protobuf.Struct`` is :data:`Struct`: any JSON object
  (``dict[str, Any]``); ``Value`` and ``ListValue`` are :data:`Value` and
  :data:`ListValue`.
- The wrappers (``UInt32Value`` and friends) are the scalar or ``None``
  (absent): declare ``step: UInt32Value = None``.
- ``google.protobuf.Duration`` is :data:`Duration`: a ``timedelta``.
- An enum subclasses :class:`ProtoEnum` with its members declared by number as
  in the ``.proto``; members travel by name (``"INFO"``). A field typed
  ``EnumField[LogLevel]`` also accepts the number (``1``) on input, as proto3
  JSON parsers do; anything else is INVALID_ARGUMENT with the field path.
- A ``oneof`` is one optional field per member (``X | None = None``) checked by
  :func:`one_of` in ``__post_init__``: only the member that is set travels.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, Union

import msgspec

from .json_codec import Message
from .scalars import Float32, Int32, Int64, Kind, UInt32, UInt64

__all__ = [
    "BoolValue",
    "BytesValue",
    "DoubleValue",
    "Duration",
    "Empty",
    "EnumField",
    "FloatValue",
    "Int32Value",
    "Int64Value",
    "ListValue",
    "ProtoEnum",
    "StringValue",
    "Struct",
    "Timestamp",
    "UInt32Value",
    "UInt64Value",
    "Value",
    "one_of",
]


class Empty(Message):
    """``google.protobuf.Empty``: a message with no fields, ``{}`` on the wire."""


Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""``google.protobuf.Timestamp``: an aware ``datetime``; RFC 3339 with an offset on the wire."""

Duration = timedelta
"""``google.protobuf.Duration``: a ``timedelta`` (msgspec's ISO 8601 form on the JSON wire)."""

Struct = dict[str, Any]
"""``google.protobuf.Struct``: any JSON object."""
Value = Any
"""``google.protobuf.Value``: any JSON value."""
ListValue = list[Any]
"""``google.protobuf.ListValue``: any JSON array."""

# Wrappers: absent (None) or the plain scalar, as the proto3 JSON mapping writes them.
# The Kind tells them apart from proto3 ``optional`` (``X | None``) on the protobuf wire.
DoubleValue = Annotated[float | None, Kind("google.protobuf.DoubleValue")]
FloatValue = Annotated[Float32 | None, Kind("google.protobuf.FloatValue")]
Int64Value = Annotated[Int64 | None, Kind("google.protobuf.Int64Value")]
UInt64Value = Annotated[UInt64 | None, Kind("google.protobuf.UInt64Value")]
Int32Value = Annotated[Int32 | None, Kind("google.protobuf.Int32Value")]
UInt32Value = Annotated[UInt32 | None, Kind("google.protobuf.UInt32Value")]
BoolValue = Annotated[bool | None, Kind("google.protobuf.BoolValue")]
StringValue = Annotated[str | None, Kind("google.protobuf.StringValue")]
BytesValue = Annotated[bytes | None, Kind("google.protobuf.BytesValue")]


class _ProtoEnumType(enum.EnumMeta):
    """Makes each member's value its name, so msgspec writes and reads it by name."""

    def __new__(
        metacls,
        cls_name: str,
        bases: tuple[type, ...],
        namespace: Any,
        **kwargs: Any,
    ) -> Any:
        cls = super().__new__(metacls, cls_name, bases, namespace, **kwargs)
        members: dict[str, Any] = dict(cls.__members__)  # aliases included: they decode too
        numbers: dict[int, Any] = {}
        for member in members.values():
            numbers.setdefault(member.number, member)
            member._value_ = member._name_
        cls._value2member_map_.clear()
        cls._value2member_map_.update(members)
        cls.__numbers__ = numbers  # type: ignore[attr-defined]
        return cls


class ProtoEnum(enum.Enum, metaclass=_ProtoEnumType):
    """Base of a proto3 enum: members declared by number, sent by name.

    ``LogLevel.INFO.number == 1`` and ``LogLevel.INFO.value == "INFO"``;
    ``LogLevel(1)`` and ``LogLevel("INFO")`` are both ``LogLevel.INFO``.
    """

    __numbers__: dict[int, Any]
    number: int

    def __new__(cls, number: object) -> ProtoEnum:
        """Make the member declared as ``NAME = number``.

        Once the class exists, ``LogLevel(value)`` looks a member up instead, by
        name or by number.
        """
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError(f"{cls.__name__}: a proto enum member is an int, got {number!r}")
        member = object.__new__(cls)
        member._value_ = number  # the metaclass replaces it by the name once all exist
        member.number = number
        return member

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return cls.__numbers__.get(value)
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.number}>"


E = TypeVar("E", bound=ProtoEnum)


@cache
def _by_name_or_number(enum_type: type[ProtoEnum]) -> Any:
    """The type msgspec decodes an ``EnumField[enum_type]`` as: names or numbers.

    msgspec reads an enum by value only, one JSON kind per enum, so numbers go
    through a twin ``IntEnum`` whose lookup table (msgspec reads
    ``_value2member_map_``) leads to the members of ``enum_type`` itself.
    """
    numbers = enum_type.__numbers__
    twin = enum.IntEnum(  # type: ignore[misc]
        f"{enum_type.__name__}Number",
        {member.name: number for number, member in numbers.items()},
    )
    twin._value2member_map_.clear()
    twin._value2member_map_.update(numbers)
    return Union[enum_type, twin]


if TYPE_CHECKING:
    EnumField = Annotated[E, "proto enum: by name, or by number on input"]
else:

    class EnumField:
        """``EnumField[LogLevel]``: a field of a proto enum, read by name or by number."""

        def __class_getitem__(cls, enum_type: type[ProtoEnum]) -> Any:
            if not (isinstance(enum_type, type) and issubclass(enum_type, ProtoEnum)):
                raise TypeError(f"EnumField[...] takes a ProtoEnum subclass, got {enum_type!r}")
            return _by_name_or_number(enum_type)


@cache
def _wire_names(message_type: type[msgspec.Struct], members: tuple[str, ...]) -> tuple[str, ...]:
    fields = {field.name: field.encode_name for field in msgspec.structs.fields(message_type)}
    return tuple(fields[member] for member in members)


def one_of(message: msgspec.Struct, *members: str, required: bool = False) -> str | None:
    """Return which member of a ``oneof`` is set (``None`` if none is).

    Raise ValueError if several are set, or none is and ``required``. Call it
    from ``__post_init__``: during decoding msgspec turns the error into a
    validation error with the message's path, which a server answers with
    INVALID_ARGUMENT.
    """
    chosen = [member for member in members if getattr(message, member) is not None]
    if len(chosen) == 1:
        return chosen[0]
    if not chosen and not required:
        return None
    names = _wire_names(type(message), members)
    wanted = ", ".join(names)
    if not chosen:
        raise ValueError(f"one of {wanted} must be set")
    found = ", ".join(name for member, name in zip(members, names, strict=True) if member in chosen)
    raise ValueError(f"only one of {wanted} may be set, got {found}")
