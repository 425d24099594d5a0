"""Scalar types of proto3, as annotated ints for message fields.

msgspec checks the range on decode, so an out-of-range number is
INVALID_ARGUMENT with the field path. On the wire they are JSON numbers.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

__all__ = ["Int32", "Int64", "UInt32", "UInt64"]

Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
"""A proto3 ``int32``/``sint32``/``sfixed32``."""
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
"""A proto3 ``int64``/``sint64``/``sfixed64``."""
UInt32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
"""A proto3 ``uint32``/``fixed32``."""
# msgspec cannot check an upper bound beyond int64, so only the sign is checked.
UInt64 = Annotated[int, Meta(ge=0)]
"""A proto3 ``uint64``/``fixed64`` (not negative; the upper bound is not checked)."""
