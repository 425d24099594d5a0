"""Field numbers on declarations, and the protobuf schema compiled from a message type.

A field travels on the protobuf wire once its declaration carries a
:class:`Number` in ``Annotated`` (msgspec and the JSON wire ignore it)::

    class Point(Message):
        x: Annotated[Int32, Number(1)] = 0
        label: Annotated[str, Number(2)] = ""

:func:`schema_of` reads a message type once and caches what the codec and the
``.proto`` export need. A message is JSON-only (no :class:`Number` in it or in
the messages it holds) or numbered throughout: :func:`is_numbered` tells them
apart, and anything in between (an unnumbered field beside numbered ones, a
duplicate, out-of-range or reserved number, a default that is not the zero
value) is a :class:`~transport.errors.DeclarationError` naming the message, the
field and the fix.
"""

from __future__ import annotations

import datetime
import threading
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

import msgspec
import numpy as np

from ...errors import DeclarationError
from ..field_numbers import Number as Number
from ..field_numbers import mentions_number, number_of, unwrap
from ..ndarray import is_array_annotation
from ..scalars import Kind
from ..wellknown import Empty, ProtoEnum

__all__ = ["MAX_FIELD_NUMBER", "FieldSchema", "MessageSchema", "Number", "TypeSchema", "schema_of"]

#: The largest protobuf field number.
MAX_FIELD_NUMBER = 2**29 - 1
_RESERVED = range(19000, 20000)  # reserved for the protobuf implementation

# Python type -> protobuf scalar when no Kind says otherwise.
_DEFAULT_KINDS: dict[Any, str] = {
    bool: "bool",
    int: "int64",
    float: "double",
    str: "string",
    bytes: "bytes",
}
_INT_KINDS = frozenset(
    [
        "int32",
        "int64",
        "uint32",
        "uint64",
        "sint32",
        "sint64",
        "fixed32",
        "fixed64",
        "sfixed32",
        "sfixed64",
    ]
)
_FLOAT_KINDS = frozenset(("float", "double"))
#: The wrapper messages and the scalar each wraps.
WRAPPERS = {
    "google.protobuf.DoubleValue": "double",
    "google.protobuf.FloatValue": "float",
    "google.protobuf.Int64Value": "int64",
    "google.protobuf.UInt64Value": "uint64",
    "google.protobuf.Int32Value": "int32",
    "google.protobuf.UInt32Value": "uint32",
    "google.protobuf.BoolValue": "bool",
    "google.protobuf.StringValue": "string",
    "google.protobuf.BytesValue": "bytes",
}
_MAP_KEYS = _INT_KINDS | {"bool", "string"}
#: Kinds that travel as a message with presence: absent is None, not a zero value.
MESSAGE_KINDS = frozenset(
    [
        "message",
        "ndarray",
        "google.protobuf.Empty",
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.Value",
    ]
)


@dataclass(eq=False)
class TypeSchema:
    """What one value travels as: a scalar, an enum, a message or a well-known type.

    ``kind`` is a proto3 scalar name (``int32``, ``string``...), ``enum``,
    ``message``, ``ndarray`` or a well-known message's full name
    (``google.protobuf.Timestamp``...).
    """

    kind: str
    enum: type[ProtoEnum] | None = None
    message: MessageSchema | None = None
    declared: Any = None  # the annotation, for the dtype check of NDArray[...]


@dataclass(eq=False)
class FieldSchema:
    """One numbered field: where it lives in Python and how it travels."""

    attr: str  # the Python attribute
    path_name: str  # the name in error paths: the JSON name, as msgspec reports it
    proto_name: str
    number: int
    label: str  # "singular" (implicit presence), "optional", "repeated" or "map"
    value: TypeSchema
    key: TypeSchema | None = None  # map keys
    oneof: str | None = None
    required: bool = False  # no default: an absent field decodes as its zero value
    as_tuple: bool = False  # repeated declared as tuple[X, ...]
    constraints: tuple[msgspec.Meta, ...] = ()


@dataclass(eq=False)
class MessageSchema:
    """The numbered fields of one message type, in number order."""

    type: type[msgspec.Struct]
    name: str  # the proto name, dotted for nested messages: ``RequestProto.IndexRequestProto``
    fields: list[FieldSchema] = field(default_factory=list)


_SCHEMAS: dict[type[Any], MessageSchema] = {}
#: Held while a schema or codec is built: a type is registered before its fields are
#: read (so a recursive field finds it), and no other thread may see it half built.
COMPILING = threading.RLock()


def proto_name_of(cls: type[Any]) -> str:
    """The ``.proto`` name of a class: its qualified name without function scopes."""
    return cls.__qualname__.rpartition("<locals>.")[2]


def schema_of(message_type: type[Any]) -> MessageSchema:
    """Return the (cached) schema of ``message_type``; raise DeclarationError if not numbered."""
    schema = _SCHEMAS.get(message_type)
    if schema is not None:
        return schema
    if not (isinstance(message_type, type) and issubclass(message_type, msgspec.Struct)):
        raise DeclarationError(
            f"{message_type!r}: only msgspec.Struct messages travel as protobuf; make it a "
            "transport.Message, or remove its Numbers to keep it JSON-only"
        )
    with COMPILING:
        if message_type in _SCHEMAS:
            return _SCHEMAS[message_type]
        schema = MessageSchema(message_type, proto_name_of(message_type))
        _SCHEMAS[message_type] = schema  # first, so a recursive field finds it
        try:
            schema.fields = _compile_fields(message_type)
        except BaseException:
            del _SCHEMAS[message_type]
            raise
        return schema


def _compile_fields(cls: type[msgspec.Struct]) -> list[FieldSchema]:
    where = cls.__qualname__
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:
        raise DeclarationError(f"{where}: cannot resolve a field type: {exc}") from None
    fields: list[FieldSchema] = []
    numbers: dict[int, str] = {}
    names: set[str] = set()
    infos = msgspec.structs.fields(cls)
    numbered = [info.name for info in infos if number_of(hints[info.name]) is not None]
    if infos and not numbered:
        raise DeclarationError(
            f"{where}.{infos[0].name}: no protobuf field number; declare every field of "
            f"{where} as Annotated[..., Number(n)] for it to travel as protobuf"
        )
    for info in infos:
        if info.name not in numbered:
            raise DeclarationError(
                f"{where}.{info.name}: no protobuf field number, but {where}.{numbered[0]} has "
                f"one; declare it as Annotated[..., Number(n)], or remove every Number from "
                f"{where} to keep it JSON-only"
            )
        compiled = _compile_field(cls, info, hints[info.name])
        if compiled.number in numbers:
            raise DeclarationError(
                f"{where}.{info.name}: field number {compiled.number} is already used by "
                f"{where}.{numbers[compiled.number]}; give each field a number of its own"
            )
        numbers[compiled.number] = info.name
        if compiled.proto_name in names:
            raise DeclarationError(
                f"{where}.{info.name}: two fields are named {compiled.proto_name}"
            )
        names.add(compiled.proto_name)
        if compiled.oneof is not None and compiled.label in ("repeated", "map"):
            raise DeclarationError(f"{where}.{info.name}: a oneof member cannot be repeated")
        fields.append(compiled)
    fields.sort(key=lambda f: f.number)
    return fields


def _compile_field(cls: type[Any], info: msgspec.structs.FieldInfo, hint: Any) -> FieldSchema:
    where = f"{cls.__qualname__}.{info.name}"
    bare, metadata = unwrap(hint)
    marker = number_of(hint)
    assert marker is not None  # _compile_fields reads only numbered fields
    number = marker.number
    if not isinstance(number, int) or isinstance(number, bool):
        raise DeclarationError(
            f"{where}: the field number {number!r} is not an int; use Number(n) with n "
            f"from 1 to {MAX_FIELD_NUMBER:,}"
        )
    if not 1 <= number <= MAX_FIELD_NUMBER:
        raise DeclarationError(
            f"{where}: the field number {number} is out of range; use a number from 1 to "
            f"{MAX_FIELD_NUMBER:,}"
        )
    if number in _RESERVED:
        raise DeclarationError(
            f"{where}: the field number {number} is reserved (19000-19999 belong to the "
            f"protobuf implementation); use a number from 1 to 18999 or 20000 to "
            f"{MAX_FIELD_NUMBER:,}"
        )
    wrapper = next((k.name for k in metadata if isinstance(k, Kind) and k.name in WRAPPERS), None)
    compiled = FieldSchema(
        attr=info.name,
        path_name=info.encode_name,
        proto_name=marker.name or info.name.rstrip("_") or info.name,
        number=number,
        label="singular",
        value=TypeSchema("bool"),
        oneof=marker.oneof,
        required=info.required,
    )
    optional, bare = _strip_none(bare, where)
    if wrapper is not None:
        if not optional:
            raise DeclarationError(f"{where}: a wrapper type is the scalar or None")
        compiled.value = TypeSchema(wrapper)
        _check_default(compiled, info, where)
        return compiled
    if optional:
        compiled.label = "optional"
    inner, inner_metadata = unwrap(bare)
    metadata = inner_metadata + metadata
    origin = typing.get_origin(inner)
    if origin in (list, tuple) and inner not in (list, tuple):
        args = typing.get_args(inner)
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            raise DeclarationError(f"{where}: a repeated field is list[X] or tuple[X, ...]")
        if args[0] is Any:
            compiled.value = TypeSchema("google.protobuf.ListValue")
        else:
            compiled.label = "repeated"
            compiled.as_tuple = origin is tuple
            compiled.value = _value_schema(args[0], where)
    elif origin is dict:
        key, value = typing.get_args(inner)
        if key is str and value is Any:
            compiled.value = TypeSchema("google.protobuf.Struct")
        else:
            compiled.label = "map"
            compiled.key = _value_schema(key, where)
            if compiled.key.kind not in _MAP_KEYS:
                raise DeclarationError(f"{where}: a map key is an integer, bool or str")
            compiled.value = _value_schema(value, where)
    else:
        kinds = [item for item in metadata if isinstance(item, Kind)]
        compiled.value = _value_schema(bare, where, kinds)
        compiled.constraints = tuple(m for m in metadata if isinstance(m, msgspec.Meta))
    if optional and compiled.label in ("repeated", "map"):
        raise DeclarationError(f"{where}: a repeated or map field cannot be None")
    _check_default(compiled, info, where)
    return compiled


def _strip_none(hint: Any, where: str) -> tuple[bool, Any]:
    """``(True, X)`` for ``X | None``; an enum's by-name-or-number union stays as it is."""
    if typing.get_origin(hint) not in (Union, types.UnionType):
        return False, hint
    members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    optional = len(members) < len(typing.get_args(hint))
    if len(members) == 1:
        return optional, members[0]
    if _enum_of(members) is not None:
        return optional, Union[tuple(members)]
    raise DeclarationError(f"{where}: protobuf has no union type; use a oneof of fields")


def _enum_of(members: list[Any]) -> type[ProtoEnum] | None:
    """The ProtoEnum of ``EnumField[E]`` (a union of E and its number twin), if it is one."""
    enums = [m for m in members if isinstance(m, type) and issubclass(m, ProtoEnum)]
    return enums[0] if len(enums) == 1 else None


def _value_schema(hint: Any, where: str, outer: list[Kind] | None = None) -> TypeSchema:
    """The schema of a single value (a singular field, a repeated element, a map key or value)."""
    bare, metadata = unwrap(hint)
    kinds = [k.name for k in [*(outer or []), *metadata] if isinstance(k, Kind)]
    if typing.get_origin(bare) in (Union, types.UnionType):
        enum_type = _enum_of(list(typing.get_args(bare)))
        if enum_type is None:
            raise DeclarationError(f"{where}: a repeated or map value cannot be a union")
        return TypeSchema("enum", enum=enum_type)
    if isinstance(bare, type) and issubclass(bare, ProtoEnum):
        return TypeSchema("enum", enum=bare)
    if bare in _DEFAULT_KINDS:
        kind = kinds[-1] if kinds else _DEFAULT_KINDS[bare]
        allowed = (
            _INT_KINDS if bare is int else _FLOAT_KINDS if bare is float else {_DEFAULT_KINDS[bare]}
        )
        if kind not in allowed:
            raise DeclarationError(f"{where}: {kind} is not a protobuf type of {bare.__name__}")
        return TypeSchema(kind)
    if bare is datetime.datetime:
        return TypeSchema("google.protobuf.Timestamp")
    if bare is datetime.timedelta:
        return TypeSchema("google.protobuf.Duration")
    if bare is Any:
        return TypeSchema("google.protobuf.Value")
    if is_array_annotation(bare):
        return TypeSchema("ndarray", declared=bare)
    if bare is Empty:
        return TypeSchema("google.protobuf.Empty", message=schema_of(Empty))
    if isinstance(bare, type) and issubclass(bare, msgspec.Struct):
        try:
            return TypeSchema("message", message=schema_of(bare))
        except DeclarationError:
            if mentions_number(bare, set()):
                raise
            held, field_name = bare.__qualname__, msgspec.structs.fields(bare)[0].name
            raise DeclarationError(
                f"{where}: a numbered field of the JSON-only {held} ({held}.{field_name} has no "
                f"protobuf field number); number every field of {held} (Annotated[..., "
                f"Number(n)]), or remove every Number from {where.rpartition('.')[0]} to keep "
                "it JSON-only"
            ) from None
    if typing.get_origin(bare) in (list, tuple, dict):
        raise DeclarationError(f"{where}: protobuf has no nested repeated or map fields")
    raise DeclarationError(f"{where}: {bare!r} has no protobuf type")


def zero_value(compiled: FieldSchema) -> Any:
    """The value of the field when it is absent from the wire."""
    if compiled.label == "repeated":
        return () if compiled.as_tuple else []
    if compiled.label == "map":
        return {}
    if compiled.label == "optional":
        return None
    value = compiled.value
    kind = value.kind
    if kind == "enum":
        assert value.enum is not None
        return value.enum.__numbers__.get(0)
    if kind in _INT_KINDS:
        return 0
    if kind in _FLOAT_KINDS:
        return 0.0
    zeros: dict[str, Any] = {
        "bool": False,
        "string": "",
        "bytes": b"",
        "google.protobuf.Struct": {},
        "google.protobuf.ListValue": [],
    }
    return zeros.get(kind)


def _check_default(compiled: FieldSchema, info: msgspec.structs.FieldInfo, where: str) -> None:
    """A field of implicit presence must default to its zero value, or absent would lie."""
    if info.required:
        return
    default = info.default_factory() if info.default is msgspec.NODEFAULT else info.default
    zero = zero_value(compiled)
    if compiled.label == "singular" and compiled.value.kind in MESSAGE_KINDS:
        return  # a message has presence: any default decodes back as itself
    if isinstance(default, np.ndarray) or default == zero:
        return
    if isinstance(zero, list | tuple) and isinstance(default, list | tuple) and not default:
        return
    raise DeclarationError(
        f"{where}: default must be the zero value {zero!r} of a numbered field, not "
        f"{default!r} (protobuf cannot tell an absent field from its zero value); default to "
        f"{zero!r}, or declare X | None = None for explicit presence"
    )


def is_numbered(message_type: type[Any]) -> bool:
    """Whether ``message_type`` travels as protobuf: numbered on every field, at any depth.

    ``False`` for a JSON-only message (no :class:`Number` in it nor in the
    messages it holds); a message without fields is numbered. A message with
    numbers that is not numbered throughout and valid raises DeclarationError.
    """
    if not isinstance(message_type, type):
        return False
    if not mentions_number(message_type, set()):
        return issubclass(message_type, msgspec.Struct) and not msgspec.structs.fields(message_type)
    schema_of(message_type)
    return True
