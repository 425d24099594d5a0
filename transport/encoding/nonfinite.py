"""Non-finite floats written as proto3 JSON writes them: ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

JSON has no NaN or infinity and msgspec writes them as ``null``, which no
float field reads back. The proto3 JSON mapping writes the three strings
instead (and reads them: :mod:`.lenient_json`). :class:`FloatWords` is
compiled once per message type from its declared types; it marks where a float
is declared (fields, list items, map values, nested and recursive messages,
unions) and, given a message, returns a copy with the non-finite floats there
replaced by their words, or the message itself when it holds none. Free JSON
(``Any``, ``dict[str, Any]``) keeps msgspec's ``null``: protobuf refuses to
write a non-finite ``google.protobuf.Value``, since a string would read back
as a string.

The codec runs it only when the fast encoder's output holds ``null``, which
every non-finite float makes it do, so a message of finite floats pays one
search of its output (:func:`holds_null`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import msgspec
import msgspec.inspect as mi
import numpy as np

__all__ = ["FloatWords", "holds_null", "word"]

#: Copies a value with its non-finite floats as words; the value itself if none.
Fix = Callable[[Any], Any]

_FLOATS = (float, np.floating)


def holds_null(data: bytes) -> bool:
    """Whether the JSON ``data`` holds ``null`` (anywhere, strings included).

    ``b"null" in data`` crawls over numbers (CPython's skip filter takes
    ``.``, ``5`` and ``,`` for ``n``, ``u`` and ``l``): 60 µs for 30 KB of
    floats, a third of encoding them. Each ``u`` found with memchr is fast
    where there are few, as among numbers; past a few (text), the plain
    search, which is fast over letters, does the rest.
    """
    find = data.find
    at = find(b"u")
    for _ in range(8):
        if at < 0:
            return False
        if data[at - 1 : at + 3] == b"null":
            return True
        at = find(b"u", at + 1)
    return at >= 0 and find(b"null", at - 1) >= 0


def word(value: float) -> str:
    """The proto3 JSON word of a non-finite float."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _float(value: Any) -> Any:
    if isinstance(value, _FLOATS) and not math.isfinite(value):
        return word(float(value))
    return value


def _items(inner: Fix) -> Fix:
    def fix(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            return value
        if inner is _float and _finite_sum(value):  # one C loop for a list of floats
            return value
        fixed = [inner(item) for item in value]
        if all(new is old for new, old in zip(fixed, value, strict=True)):
            return value
        return fixed if isinstance(value, list) else tuple(fixed)

    return fix


def _finite_sum(values: Any) -> bool:
    """Whether ``values`` sum to a finite number: then none is NaN or infinite."""
    try:
        return math.isfinite(sum(values))
    except (TypeError, OverflowError):  # not numbers: the item by item walk decides
        return False


def _positions(inners: list[Fix | None]) -> Fix:
    def fix(value: Any) -> Any:
        if not isinstance(value, tuple) or len(value) != len(inners):
            return value
        fixed = tuple(
            item if inner is None else inner(item)
            for item, inner in zip(value, inners, strict=True)
        )
        return value if all(n is o for n, o in zip(fixed, value, strict=True)) else fixed

    return fix


def _values(inner: Fix) -> Fix:
    def fix(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        fixed = {key: inner(item) for key, item in value.items()}
        return value if all(fixed[key] is item for key, item in value.items()) else fixed

    return fix


class FloatWords:
    """Where one message type declares floats, compiled once; :meth:`fix` writes their words."""

    __slots__ = ("_plans", "_root")

    def __init__(self, type_: Any) -> None:
        self._plans: dict[Any, Fix | None] = {}
        self._root = self._plan(mi.type_info(type_))

    @property
    def declared(self) -> bool:
        """Whether the type declares a float anywhere (if not, :meth:`fix` has nothing to do)."""
        return self._root is not None

    def fix(self, message: Any) -> Any:
        """``message`` with each non-finite float where a float is declared as its word.

        The message itself when there is none; otherwise a copy (the message
        is not changed), fit only for encoding.
        """
        return message if self._root is None else self._root(message)

    def _plan(self, info: mi.Type) -> Fix | None:
        if isinstance(info, mi.Metadata):
            return self._plan(info.type)
        if isinstance(info, mi.FloatType):
            return _float
        if isinstance(info, mi.StructType):
            return self._struct(info.cls, info)
        if isinstance(info, (mi.ListType, mi.VarTupleType)):
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
        return None  # sets hold no NaN usefully; free JSON keeps null (above)

    def _union(self, info: mi.UnionType) -> Fix | None:
        """A union: the value's own kind picks the plan (a float, a list, a message...)."""
        plans: list[tuple[type[Any] | tuple[type[Any], ...], Fix]] = []
        for option in info.types:
            plan = self._plan(option)
            if plan is None:
                continue
            if isinstance(option, mi.Metadata):
                option = option.type
            if isinstance(option, mi.FloatType):
                plans.append((_FLOATS, plan))
            elif isinstance(option, mi.StructType):
                plans.append((option.cls, plan))
            elif isinstance(option, (mi.ListType, mi.VarTupleType, mi.TupleType)):
                plans.append(((list, tuple), plan))
            elif isinstance(option, mi.DictType):
                plans.append((dict, plan))
        if not plans:
            return None

        def fix(value: Any) -> Any:
            for kind, plan in plans:
                if isinstance(value, kind):
                    return plan(value)
            return value

        return fix

    def _struct(self, cls: type[Any], info: mi.StructType) -> Fix | None:
        if cls in self._plans:  # a recursive message: the plan refers to itself
            return self._plans[cls]
        fields: list[tuple[str, Fix]] = []

        def fix(value: Any) -> Any:
            if not isinstance(value, cls):
                return value
            changes = {}
            for name, inner in fields:
                old = getattr(value, name)
                new = inner(old)
                if new is not old:
                    changes[name] = new
            if not changes:
                return value
            # A copy with the words set as they are: replace() would run __post_init__,
            # which may check the floats, and a frozen message refuses setattr.
            fixed = copy.copy(value)
            for name, new in changes.items():
                msgspec.structs.force_setattr(fixed, name, new)
            return fixed

        # Registered before the fields are planned, filled in after, so that a
        # message holding itself gets this very plan.
        self._plans[cls] = fix
        for field in info.fields:
            inner = self._plan(field.type)
            if inner is not None:
                fields.append((field.name, inner))
        if not fields:
            self._plans[cls] = None
            return None
        return fix
