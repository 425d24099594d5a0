"""The :class:`Number` a field's declaration carries, and where a type mentions one.

A field travels on the protobuf wire once its declaration carries a
:class:`Number` in ``Annotated``; :func:`mentions_number` tells a JSON-only
message (no number in it nor in the messages it holds) from one meant for
protobuf. Both wires read it (the lenient JSON reading accepts a field's
``.proto`` name), so it lives below them.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

__all__ = ["Number", "mentions_number", "number_of", "unwrap"]


@dataclass(frozen=True, eq=False)
class Number:
    """``Annotated`` metadata: the protobuf field number of a message field.

    ``name`` is the field's name in the ``.proto`` when it is not the Python
    name (a trailing ``_`` is dropped anyway: ``try_`` is ``try``); ``oneof``
    names the ``oneof`` group the field belongs to.
    """

    number: int
    name: str | None = None
    oneof: str | None = None

    # typing caches Annotated[...] by equal metadata: Number(True) must not equal
    # Number(1), or a refused declaration would hand its marker to a valid one.
    def _key(self) -> tuple[object, ...]:
        return (type(self.number), self.number, self.name, self.oneof)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def unwrap(hint: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` layers: the bare type and all the metadata, outermost last."""
    metadata: list[Any] = []
    while typing.get_origin(hint) is Annotated:
        metadata[:0] = hint.__metadata__
        hint = hint.__origin__
    return hint, metadata


def number_of(hint: Any) -> Number | None:
    """The field's :class:`Number` (the outermost one, if it has several)."""
    numbers = [item for item in unwrap(hint)[1] if isinstance(item, Number)]
    return numbers[-1] if numbers else None


def mentions_number(hint: Any, seen: set[Any]) -> bool:
    """Whether a :class:`Number` appears in ``hint``, in its messages' fields at any depth."""
    bare, metadata = unwrap(hint)
    if any(isinstance(item, Number) for item in metadata):
        return True
    if isinstance(bare, type) and (
        issubclass(bare, msgspec.Struct) or dataclasses.is_dataclass(bare)
    ):
        if bare in seen:
            return False
        seen.add(bare)
        try:
            hints = typing.get_type_hints(bare, include_extras=True)
        except NameError:  # msgspec could not read it either: not a protobuf message
            return False
        return any(mentions_number(item, seen) for item in hints.values())
    return any(mentions_number(arg, seen) for arg in typing.get_args(bare))
