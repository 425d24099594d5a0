"""Scalar types of proto3, as annotated ints and floats for message fields.

msgspec checks the range on decode, so an out-of-range number is
INVALID_ARGUMENT with the field path. On the JSON wire they are JSON numbers;
on the protobuf wire each travels as the proto3 type its :class:`Kind` names
(plain ``int`` is ``int64``, plain ``float`` is ``double``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta

__all__ = [
    "Fixed32",
    "Fixed64",
    "Float32",
    "Int32",
    "Int64",
    "Kind",
    "SFixed32",
    "SFixed64",
    "SInt32",
    "SInt64",
    "UInt32",
    "UInt64",
]


@dataclass(frozen=True)
class Kind:
    """``Annotated`` metadata naming the protobuf type a field travels as (``int32``, ...)."""

    name: str


_I32 = Meta(ge=-(2**31), le=2**31 - 1)
_I64 = Meta(ge=-(2**63), le=2**63 - 1)
_U32 = Meta(ge=0, le=2**32 - 1)
# msgspec cannot check an upper bound beyond int64, so only the sign is checked.
_U64 = Meta(ge=0)

Int32 = Annotated[int, _I32, Kind("int32")]
"""A proto3 ``int32`` (see :data:`SInt32` and :data:`SFixed32` for the other encodings)."""
Int64 = Annotated[int, _I64, Kind("int64")]
"""A proto3 ``int64`` (see :data:`SInt64` and :data:`SFixed64` for the other encodings)."""
UInt32 = Annotated[int, _U32, Kind("uint32")]
"""A proto3 ``uint32`` (see :data:`Fixed32`)."""
UInt64 = Annotated[int, _U64, Kind("uint64")]
"""A proto3 ``uint64`` (not negative; the upper bound is not checked); see :data:`Fixed64`."""
SInt32 = Annotated[int, _I32, Kind("sint32")]
"""A proto3 ``sint32``: zigzag-encoded, cheaper than ``int32`` for negative numbers."""
SInt64 = Annotated[int, _I64, Kind("sint64")]
"""A proto3 ``sint64``: zigzag-encoded."""
Fixed32 = Annotated[int, _U32, Kind("fixed32")]
"""A proto3 ``fixed32``: always 4 bytes."""
Fixed64 = Annotated[int, _U64, Kind("fixed64")]
"""A proto3 ``fixed64``: always 8 bytes."""
SFixed32 = Annotated[int, _I32, Kind("sfixed32")]
"""A proto3 ``sfixed32``: always 4 bytes."""
SFixed64 = Annotated[int, _I64, Kind("sfixed64")]
"""A proto3 ``sfixed64``: always 8 bytes."""
Float32 = Annotated[float, Kind("float")]
"""A proto3 ``float`` (32 bits on the protobuf wire; a plain ``float`` is a ``double``)."""
