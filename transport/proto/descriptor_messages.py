"""The messages of ``google/protobuf/descriptor.proto`` that describe a proto3 file.

Declared with field numbers like any other message, so :class:`ProtobufCodec`
writes the ``FileDescriptorProto`` bytes that server reflection serves (and
reads those a server answers). Only what proto3 declarations use is here;
enums travel as plain integers (``TYPE_*``/``LABEL_*`` below).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from ..encoding.field_numbers import Number

__all__ = [
    "DescriptorProto",
    "EnumDescriptorProto",
    "EnumOptions",
    "EnumValueDescriptorProto",
    "FieldDescriptorProto",
    "FileDescriptorProto",
    "MessageOptions",
    "MethodDescriptorProto",
    "OneofDescriptorProto",
    "ServiceDescriptorProto",
]

#: ``FieldDescriptorProto.Type`` numbers of the proto3 scalars.
SCALAR_TYPES = {
    "double": 1,
    "float": 2,
    "int64": 3,
    "uint64": 4,
    "int32": 5,
    "fixed64": 6,
    "fixed32": 7,
    "bool": 8,
    "string": 9,
    "bytes": 12,
    "uint32": 13,
    "sfixed32": 15,
    "sfixed64": 16,
    "sint32": 17,
    "sint64": 18,
}
TYPE_MESSAGE = 11
TYPE_ENUM = 14
LABEL_OPTIONAL = 1
LABEL_REPEATED = 3


class MessageOptions(msgspec.Struct, kw_only=True):
    """``google.protobuf.MessageOptions``: only ``map_entry``, which marks a map's entry type."""

    map_entry: Annotated[bool | None, Number(7)] = None


class EnumOptions(msgspec.Struct, kw_only=True):
    """``google.protobuf.EnumOptions``: only ``allow_alias``."""

    allow_alias: Annotated[bool | None, Number(2)] = None


class FieldDescriptorProto(msgspec.Struct, kw_only=True):
    """One field of a message."""

    name: Annotated[str, Number(1)] = ""
    number: Annotated[int, Number(3)] = 0
    label: Annotated[int, Number(4)] = 0
    type: Annotated[int, Number(5)] = 0
    type_name: Annotated[str, Number(6)] = ""  # ".pkg.Message" for messages and enums
    oneof_index: Annotated[int | None, Number(9)] = None  # 0 is a real index: explicit presence
    json_name: Annotated[str, Number(10)] = ""
    proto3_optional: Annotated[bool, Number(17)] = False


class OneofDescriptorProto(msgspec.Struct, kw_only=True):
    """A oneof group (also the synthetic ``_name`` group of a proto3 ``optional`` field)."""

    name: Annotated[str, Number(1)] = ""


class EnumValueDescriptorProto(msgspec.Struct, kw_only=True):
    """One member of an enum."""

    name: Annotated[str, Number(1)] = ""
    number: Annotated[int | None, Number(2)] = None  # 0 is a real number: explicit presence


class EnumDescriptorProto(msgspec.Struct, kw_only=True):
    """An enum."""

    name: Annotated[str, Number(1)] = ""
    value: Annotated[list[EnumValueDescriptorProto], Number(2)] = []
    options: Annotated[EnumOptions | None, Number(3)] = None


class DescriptorProto(msgspec.Struct, kw_only=True):
    """A message, with the messages and enums nested in it."""

    name: Annotated[str, Number(1)] = ""
    field: Annotated[list[FieldDescriptorProto], Number(2)] = []
    nested_type: Annotated[list[DescriptorProto], Number(3)] = []
    enum_type: Annotated[list[EnumDescriptorProto], Number(4)] = []
    options: Annotated[MessageOptions | None, Number(7)] = None
    oneof_decl: Annotated[list[OneofDescriptorProto], Number(8)] = []


class MethodDescriptorProto(msgspec.Struct, kw_only=True):
    """One method of a service."""

    name: Annotated[str, Number(1)] = ""
    input_type: Annotated[str, Number(2)] = ""
    output_type: Annotated[str, Number(3)] = ""
    client_streaming: Annotated[bool, Number(5)] = False
    server_streaming: Annotated[bool, Number(6)] = False


class ServiceDescriptorProto(msgspec.Struct, kw_only=True):
    """A service."""

    name: Annotated[str, Number(1)] = ""
    method: Annotated[list[MethodDescriptorProto], Number(2)] = []


class FileDescriptorProto(msgspec.Struct, kw_only=True):
    """A ``.proto`` file: what server reflection serves, serialized."""

    name: Annotated[str, Number(1)] = ""
    package: Annotated[str, Number(2)] = ""
    dependency: Annotated[list[str], Number(3)] = []
    message_type: Annotated[list[DescriptorProto], Number(4)] = []
    enum_type: Annotated[list[EnumDescriptorProto], Number(5)] = []
    service: Annotated[list[ServiceDescriptorProto], Number(6)] = []
    syntax: Annotated[str, Number(12)] = ""
