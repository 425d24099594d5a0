"""``FileDescriptorProto`` of declared services, as server reflection serves them.

:func:`file_descriptors` describes the same file :func:`~transport.encoding.protobuf.proto_file`
writes (one per package: its messages, enums and services), plus the
well-known types' files it imports, built here from their definitions. The
descriptors are plain declarations encoded with :class:`ProtobufCodec`; no
protobuf runtime is needed. Every field carries its ``json_name`` as protoc
writes it (:func:`json_name`), or the JSON name the declaration gives it.
"""

from __future__ import annotations

from typing import Any

from ..encoding.names import json_name
from ..encoding.protobuf import ProtobufCodec
from ..encoding.protobuf.schema import WRAPPERS, FieldSchema, TypeSchema
from ..encoding.wellknown import Empty, ProtoEnum
from ..errors import DeclarationError
from ..service import Service
from .descriptor_messages import (
    LABEL_OPTIONAL,
    LABEL_REPEATED,
    SCALAR_TYPES,
    TYPE_ENUM,
    TYPE_MESSAGE,
    DescriptorProto,
    EnumDescriptorProto,
    EnumOptions,
    EnumValueDescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    MessageOptions,
    MethodDescriptorProto,
    OneofDescriptorProto,
    ServiceDescriptorProto,
)
from .export import Gathered, _is_scalar, field_json_name, gather

__all__ = [
    "FILE_CODEC",
    "file_descriptor",
    "file_descriptors",
    "file_name",
    "json_name",
    "wellknown_files",
]

#: Encodes and decodes ``FileDescriptorProto`` bytes.
FILE_CODEC = ProtobufCodec(FileDescriptorProto)


def file_name(package: str) -> str:
    """The file name reflection gives a package's declarations: ``a/b/c.proto`` for ``a.b.c``."""
    return (package.replace(".", "/") or "services") + ".proto"


def file_descriptors(*services: type[object]) -> list[FileDescriptorProto]:
    """One descriptor per package of ``services``, then the well-known files they import."""
    packages: dict[str, list[type[object]]] = {}
    for service in services:
        if not (isinstance(service, type) and Service in service.__mro__):
            raise DeclarationError(f"{service!r} is not a Service declaration")
        name = service.service_name()  # type: ignore[attr-defined]
        packages.setdefault(name.rpartition(".")[0], []).append(service)
    files = [file_descriptor(*group) for group in packages.values()]
    needed = {dependency for file in files for dependency in file.dependency}
    return files + [file for file in wellknown_files() if file.name in needed]


def _with_json_names(message: DescriptorProto) -> DescriptorProto:
    """Fill the ``json_name`` not set yet of ``message``'s fields, nested messages included."""
    for field in message.field:
        field.json_name = field.json_name or json_name(field.name)
    for nested in message.nested_type:
        _with_json_names(nested)
    return message


def file_descriptor(*services: type[object]) -> FileDescriptorProto:
    """The descriptor of the ``.proto`` file of ``services`` (all of one package)."""
    gathered = gather(services)
    writer, package = gathered.writer, gathered.package
    prefix = f".{package}." if package else "."
    file = FileDescriptorProto(
        name=file_name(package),
        package=package,
        dependency=sorted(gathered.collected.imports),
        syntax="proto3",
    )
    for cls in writer.children.get(None, []):
        if cls in gathered.collected.enums:
            file.enum_type.append(_enum(cls, writer.names[cls]))
        else:
            file.message_type.append(_message(gathered, cls, prefix))
    if gathered.collected.ndarray:
        file.message_type.append(_ndarray())
    for service in gathered.services:
        file.service.append(_service(gathered, service, prefix))
    for message in file.message_type:
        _with_json_names(message)
    return file


def _type_name(gathered: Gathered, value: TypeSchema, prefix: str) -> str:
    if value.kind == "message":
        assert value.message is not None
        return prefix + gathered.writer.names[value.message.type]
    if value.kind == "enum":
        assert value.enum is not None
        return prefix + gathered.writer.names[value.enum]
    if value.kind == "ndarray":
        return prefix + "NdArray"
    return "." + value.kind  # a well-known message


def _typed(field: FieldDescriptorProto, gathered: Gathered, value: TypeSchema, prefix: str) -> None:
    if value.kind in SCALAR_TYPES:
        field.type = SCALAR_TYPES[value.kind]
    else:
        field.type = TYPE_ENUM if value.kind == "enum" else TYPE_MESSAGE
        field.type_name = _type_name(gathered, value, prefix)


def _entry_name(field_name: str) -> str:
    """The entry message protoc names for a map field: ``my_map`` -> ``MyMapEntry``."""
    return "".join(part[:1].upper() + part[1:] for part in field_name.split("_")) + "Entry"


def _message(gathered: Gathered, cls: type[Any], prefix: str) -> DescriptorProto:
    writer = gathered.writer
    schema = gathered.collected.messages[cls]
    full = prefix + writer.names[cls]
    message = DescriptorProto(name=writer.names[cls].rpartition(".")[2])
    for child in writer.children.get(cls, []):
        if child in gathered.collected.enums:
            message.enum_type.append(_enum(child, writer.names[child]))
        else:
            message.nested_type.append(_message(gathered, child, prefix))
    groups: list[str] = []
    for schema_field in schema.fields:
        if schema_field.oneof is not None and schema_field.oneof not in groups:
            groups.append(schema_field.oneof)
    message.oneof_decl = [OneofDescriptorProto(name=name) for name in groups]
    # In the .proto's order: a oneof's members together, where its first member is.
    ordered: list[FieldSchema] = []
    for schema_field in schema.fields:
        if schema_field.oneof is None:
            ordered.append(schema_field)
        elif schema_field is next(f for f in schema.fields if f.oneof == schema_field.oneof):
            ordered += [f for f in schema.fields if f.oneof == schema_field.oneof]
    for schema_field in ordered:
        message.field.append(_field(gathered, schema_field, prefix, message, full, groups))
    return message


def _field(
    gathered: Gathered,
    schema_field: FieldSchema,
    prefix: str,
    message: DescriptorProto,
    full: str,
    groups: list[str],
) -> FieldDescriptorProto:
    field = FieldDescriptorProto(
        name=schema_field.proto_name,
        number=schema_field.number,
        label=LABEL_OPTIONAL,
        json_name=field_json_name(schema_field),
    )
    if schema_field.label == "map":
        assert schema_field.key is not None
        entry = DescriptorProto(
            name=_entry_name(schema_field.proto_name), options=MessageOptions(map_entry=True)
        )
        key = FieldDescriptorProto(name="key", number=1, label=LABEL_OPTIONAL)
        value = FieldDescriptorProto(name="value", number=2, label=LABEL_OPTIONAL)
        _typed(key, gathered, schema_field.key, prefix)
        _typed(value, gathered, schema_field.value, prefix)
        entry.field = [key, value]
        message.nested_type.append(entry)
        field.label, field.type = LABEL_REPEATED, TYPE_MESSAGE
        field.type_name = f"{full}.{entry.name}"
        return field
    _typed(field, gathered, schema_field.value, prefix)
    if schema_field.label == "repeated":
        field.label = LABEL_REPEATED
    elif schema_field.oneof is not None:
        field.oneof_index = groups.index(schema_field.oneof)
    elif schema_field.label == "optional" and _is_scalar(schema_field.value):
        # proto3 `optional`: a synthetic oneof, declared after every real one.
        field.proto3_optional = True
        field.oneof_index = len(message.oneof_decl)
        message.oneof_decl.append(OneofDescriptorProto(name=f"_{schema_field.proto_name}"))
    return field


def _enum(enum_type: type[ProtoEnum], name: str) -> EnumDescriptorProto:
    if 0 not in enum_type.__numbers__:
        raise DeclarationError(f"{enum_type.__qualname__}: a proto3 enum needs a member = 0")
    members = sorted(enum_type.__members__.items(), key=lambda item: item[1].number != 0)
    enum = EnumDescriptorProto(
        name=name.rpartition(".")[2],
        value=[EnumValueDescriptorProto(name=key, number=m.number) for key, m in members],
    )
    if len({member.number for _, member in members}) < len(members):
        enum.options = EnumOptions(allow_alias=True)
    return enum


def _service(gathered: Gathered, service: type[Service], prefix: str) -> ServiceDescriptorProto:
    described = ServiceDescriptorProto(name=service.service_name().rpartition(".")[2])
    for name, method in service.methods().items():
        described.method.append(
            MethodDescriptorProto(
                name=name,
                input_type=_rpc_type(gathered, method.request_type, prefix),
                output_type=_rpc_type(gathered, method.response_type, prefix),
                client_streaming=method.cardinality.client_streaming,
                server_streaming=method.cardinality.server_streaming,
            )
        )
    return described


def _rpc_type(gathered: Gathered, message_type: type[Any], prefix: str) -> str:
    if message_type is Empty:
        return ".google.protobuf.Empty"
    return prefix + gathered.writer.names[message_type]


# --- the well-known types' files


def _scalar(name: str, number: int, kind: str, **extra: Any) -> FieldDescriptorProto:
    return FieldDescriptorProto(
        name=name, number=number, label=LABEL_OPTIONAL, type=SCALAR_TYPES[kind], **extra
    )


def _of(name: str, number: int, type_name: str, **extra: Any) -> FieldDescriptorProto:
    extra.setdefault("label", LABEL_OPTIONAL)
    return FieldDescriptorProto(
        name=name, number=number, type=TYPE_MESSAGE, type_name=type_name, **extra
    )


def _seconds_nanos(name: str) -> DescriptorProto:
    return DescriptorProto(
        name=name, field=[_scalar("seconds", 1, "int64"), _scalar("nanos", 2, "int32")]
    )


def wellknown_files() -> list[FileDescriptorProto]:
    """The files of the well-known types declarations use (empty, timestamp, duration...)."""

    def file(name: str, *messages: DescriptorProto, **extra: Any) -> FileDescriptorProto:
        return FileDescriptorProto(
            name=f"google/protobuf/{name}.proto",
            package="google.protobuf",
            message_type=[_with_json_names(message) for message in messages],
            syntax="proto3",
            **extra,
        )

    in_value = {"oneof_index": 0}
    value = DescriptorProto(
        name="Value",
        field=[
            FieldDescriptorProto(
                name="null_value",
                number=1,
                label=LABEL_OPTIONAL,
                type=TYPE_ENUM,
                type_name=".google.protobuf.NullValue",
                oneof_index=0,
            ),
            _scalar("number_value", 2, "double", **in_value),
            _scalar("string_value", 3, "string", **in_value),
            _scalar("bool_value", 4, "bool", **in_value),
            _of("struct_value", 5, ".google.protobuf.Struct", **in_value),
            _of("list_value", 6, ".google.protobuf.ListValue", **in_value),
        ],
        oneof_decl=[OneofDescriptorProto(name="kind")],
    )
    struct = DescriptorProto(
        name="Struct",
        field=[_of("fields", 1, ".google.protobuf.Struct.FieldsEntry", label=LABEL_REPEATED)],
        nested_type=[
            DescriptorProto(
                name="FieldsEntry",
                field=[
                    _scalar("key", 1, "string"),
                    _of("value", 2, ".google.protobuf.Value"),
                ],
                options=MessageOptions(map_entry=True),
            )
        ],
    )
    list_value = DescriptorProto(
        name="ListValue", field=[_of("values", 1, ".google.protobuf.Value", label=LABEL_REPEATED)]
    )
    null = EnumDescriptorProto(
        name="NullValue", value=[EnumValueDescriptorProto(name="NULL_VALUE", number=0)]
    )
    wrappers = [
        DescriptorProto(name=name.rpartition(".")[2], field=[_scalar("value", 1, kind)])
        for name, kind in WRAPPERS.items()
    ]
    return [
        file("empty", DescriptorProto(name="Empty")),
        file("timestamp", _seconds_nanos("Timestamp")),
        file("duration", _seconds_nanos("Duration")),
        file("struct", struct, value, list_value, enum_type=[null]),
        file("wrappers", *wrappers),
    ]


def _ndarray() -> DescriptorProto:
    """The ``NdArray`` message of the file (see ``NDARRAY_PROTO``)."""
    return DescriptorProto(
        name="NdArray",
        field=[
            _scalar("dtype", 1, "string"),
            FieldDescriptorProto(
                name="shape", number=2, label=LABEL_REPEATED, type=SCALAR_TYPES["uint64"]
            ),
            _scalar("data", 3, "bytes"),
            _scalar("quantization", 4, "string"),
            _scalar("min_val", 5, "double"),
            _scalar("max_val", 6, "double"),
            _scalar("scale", 7, "double"),
            _scalar("original_dtype", 8, "string"),
        ],
    )
