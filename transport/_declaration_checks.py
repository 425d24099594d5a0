"""Mistakes in a declaration or a ``bind()`` caught early, each with a message that names the fix.

A declaration is checked when its class statement runs (field types a codec
cannot carry, messages numbered for protobuf only in part, stubs without
``@rpc``, a list where a stream was meant, a missing ``Protocol`` base); an
implementation is checked when it is bound (a class for an instance, nothing
of the declaration implemented, a name close to a declared one, methods left
out, the protobuf wire asked of a JSON-only service).
"""

from __future__ import annotations

import difflib
import enum
import inspect
import logging
import sys
import typing
import warnings
from collections.abc import Iterable
from typing import Any, Protocol

import msgspec.inspect as mi
import numpy as np

from .encoding.protobuf.schema import is_numbered
from .errors import DeclarationError, DeclarationWarning

__all__ = [
    "check_declaration_class",
    "check_implementation",
    "check_message_fields",
    "check_numbering",
    "check_protobuf_wire",
    "stream_hint",
]

logger = logging.getLogger("transport.server")

#: What a message field may hold, for the messages that name an unsupported type.
SUPPORTED_FIELD_TYPES = (
    "str, int, float, bool, bytes, None, enums, Literal, datetime/date/time/timedelta, "
    "UUID, Decimal, list/tuple/set/dict of these, unions, other messages (msgspec.Struct, "
    "dataclass, attrs) and numpy.ndarray"
)

# Custom (non-native) types the JSON codec's hooks know how to carry. Enums are
# native to msgspec, but msgspec before 0.23 reports a ProtoEnum as a custom type.
_CUSTOM_TYPES: tuple[type[Any], ...] = (np.ndarray, enum.Enum)


def check_message_fields(message_type: type[Any], where: str) -> None:
    """Raise :class:`DeclarationError` if a field of ``message_type`` (at any depth) is unusable."""
    _walk(mi.type_info(message_type), message_type.__name__, where, set())


def _walk(node: Any, path: str, where: str, seen: set[int]) -> None:
    if isinstance(node, mi.CustomType):
        cls = typing.get_origin(node.cls) or node.cls  # numpy.typing.NDArray[...] -> ndarray
        if not (isinstance(cls, type) and issubclass(cls, _CUSTOM_TYPES)):
            raise DeclarationError(
                f"{where}: field {path} has type {node.cls.__qualname__}, which a message cannot "
                f"carry; make {node.cls.__qualname__} a message too (subclass transport.Message) "
                f"or use a supported type: {SUPPORTED_FIELD_TYPES}"
            )
        return
    if isinstance(node, mi.DictType) and isinstance(node.key_type, mi.BoolType):
        # proto3 JSON writes such keys as "true"/"false", which msgspec neither
        # writes nor reads back as bool: refused here, not INTERNAL at the first call.
        raise DeclarationError(
            f"{where}: field {path} is a map with bool keys, which the JSON wire cannot carry; "
            f"use str or int keys"
        )
    if isinstance(node, (mi.StructType, mi.DataclassType, mi.TypedDictType, mi.NamedTupleType)):
        if id(node) in seen:  # a recursive message
            return
        seen.add(id(node))
        for field in node.fields:
            _walk(field.type, f"{node.cls.__name__}.{field.name}", where, seen)
        return
    for name in getattr(node, "__struct_fields__", ()):
        value = getattr(node, name)
        children = value if isinstance(value, tuple) else (value,)
        for child in children:
            if isinstance(child, mi.Type):
                _walk(child, path, where, seen)


def check_numbering(where: str, request_type: type[Any], response_type: type[Any]) -> None:
    """Refuse a method that is neither JSON-only nor numbered for protobuf throughout.

    Each message must be one or the other on its own (see
    :func:`~transport.encoding.protobuf.schema.is_numbered`); then a numbered
    request with a JSON-only response, or the reverse, is refused too, as the
    method could only speak JSON. A message without fields goes with either.
    """
    try:
        numbered = {kind: is_numbered(kind) for kind in (request_type, response_type)}
    except DeclarationError as exc:
        raise DeclarationError(f"{where}: {exc}") from None
    labelled = {request_type: "request", response_type: "response"}
    plain = [kind for kind, yes in numbered.items() if not yes]
    fielded = [kind for kind, yes in numbered.items() if yes and _field_names(kind)]
    if plain and fielded:
        json_only, other = plain[0], fielded[0]
        name = json_only.__qualname__
        raise DeclarationError(
            f"{where}: {name}.{_field_names(json_only)[0]} has no protobuf field number, but "
            f"the {labelled[other]} {other.__qualname__} is numbered, so the method could "
            f"only speak JSON; number every field of {name} (Annotated[..., Number(n)]), or "
            f"remove every Number from {other.__qualname__} to keep the method JSON-only"
        )


def _field_names(message_type: type[Any]) -> list[str]:
    info = mi.type_info(message_type)
    return [field.name for field in getattr(info, "fields", ())]


def check_protobuf_wire(service: Any) -> None:
    """Refuse ``bind(..., wire="protobuf")`` when no method of ``service`` is numbered."""
    methods = service.methods().values()
    if any(method.protobuf_codecs() is not None for method in methods):
        return
    name = service.service_name()
    raise DeclarationError(
        f"bind(..., wire='protobuf'): {name} is JSON-only (its messages have no protobuf "
        f"field numbers); number every field of its messages (Annotated[..., Number(n)]), "
        f"or bind with wire='json'"
    )


def stream_hint(hint: Any) -> str:
    """A hint on how to declare a stream when ``hint`` is a collection of messages, else ``""``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, (list, tuple, set))
    ):
        item = args[0].__name__ if args and isinstance(args[0], type) else "Message"
        return (
            f"; to send several messages, declare a stream: Iterator[{item}] "
            f"(AsyncIterator[{item}] for async def), or wrap the list in a message with a "
            f"list[{item}] field"
        )
    return ""


def _own_methods(cls: type[Any], method_type: type[Any]) -> list[str]:
    return [name for name, value in vars(cls).items() if isinstance(value, method_type)]


def check_declaration_class(cls: type[Any], method_type: type[Any]) -> None:
    """Check a class statement that declares a service (its own body and bases)."""
    declares = bool(_own_methods(cls, method_type))
    inherits = any(_own_methods(klass, method_type) for klass in cls.__mro__[1:])
    if inherits and not (declares or Protocol in cls.__bases__):
        return  # an implementation that subclasses its declaration
    plain = [
        name
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]
    if plain:
        names = ", ".join(plain)
        raise DeclarationError(
            f"{cls.__qualname__}: {names} {'is' if len(plain) == 1 else 'are'} not decorated "
            f"with @rpc; write @rpc on the line above each method of a service declaration"
        )
    if declares and Protocol not in cls.__bases__:
        warnings.warn(
            f"{cls.__qualname__}: list Protocol among the bases of a service declaration "
            f"(class {cls.__name__}(Service, Protocol, name=...)): type checkers accept the `...` "
            "bodies of its stubs only in a Protocol (mypy otherwise reports a missing return "
            "statement and suggests abc.abstractmethod)",
            DeclarationWarning,
            stacklevel=_class_statement_level(),
        )


# Frames between a class statement and the check: metaclasses and __init_subclass__.
_DECLARING_MODULES = frozenset(
    {"abc", "typing", "typing_extensions", __name__, "transport.service"}
)


def _class_statement_level() -> int:
    """The ``stacklevel`` that makes a warning point at the user's class statement."""
    level, frame = 2, sys._getframe(2)  # 1: the caller of this function
    while frame.f_back is not None and frame.f_globals.get("__name__") in _DECLARING_MODULES:
        level, frame = level + 1, frame.f_back
    return level


def _public_callables(implementation: object) -> list[str]:
    names = []
    for name in dir(implementation):
        if name.startswith("_"):
            continue
        try:
            value = inspect.getattr_static(implementation, name)
        except AttributeError:
            continue
        if callable(value) or isinstance(value, (staticmethod, classmethod)):
            names.append(name)
    return names


def _close_match(declared: str, offered: Iterable[str]) -> str | None:
    """An offered name that looks like ``declared`` (case and underscores aside)."""

    def folded(name: str) -> str:
        return name.replace("_", "").lower()

    candidates = {folded(name): name for name in offered}
    found = difflib.get_close_matches(folded(declared), list(candidates), n=1, cutoff=0.75)
    return candidates[found[0]] if found else None


def check_implementation(
    service_name: str,
    declared: dict[str, str],
    implementation: object,
    implemented: Iterable[str],
) -> None:
    """Check what ``bind()`` was given; log the declared methods it leaves unimplemented.

    ``declared`` maps each gRPC method name to its Python attribute;
    ``implemented`` names the attributes the implementation provides.
    """
    if isinstance(implementation, type):
        name = implementation.__name__
        raise DeclarationError(
            f"bind() got the class {name}, not an instance of it; pass an instance: "
            f"bind({service_name.rsplit('.', 1)[-1]}, {name}())"
        )
    owner = type(implementation).__name__
    done = set(implemented)
    missing = [attribute for attribute in declared.values() if attribute not in done]
    offered = [name for name in _public_callables(implementation) if name not in declared.values()]
    for attribute in missing:
        close = _close_match(attribute, offered)
        if close is not None:
            raise DeclarationError(
                f"{owner} has no method {attribute} of {service_name}, but has {close}: did you "
                f"mean `{attribute}`? Implementation methods are matched by their exact name"
            )
    if missing and len(missing) == len(declared):
        raise DeclarationError(
            f"{owner} implements none of the methods of {service_name} "
            f"({', '.join(declared.values())}); bind an object with methods of those names"
        )
    if missing:
        logger.warning(
            "%s leaves %s of %s unimplemented (calls to them answer UNIMPLEMENTED)",
            owner,
            ", ".join(missing),
            service_name,
        )
