"""The ``.proto`` text of a declared service, for protoc-generated peers and tools.

:func:`proto_file` writes one proto3 file: the package, imports of the
well-known types in use, every message and enum the methods reach (a class
declared inside a message class is nested in it, as in the seeds), the
``NdArray`` message if an array field needs it, and the service.
``python -m transport proto MODULE:Service`` prints it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, NamedTuple, cast

import msgspec

from ..encoding.names import json_name
from ..encoding.protobuf import NDARRAY_PROTO
from ..encoding.protobuf.schema import (
    FieldSchema,
    MessageSchema,
    TypeSchema,
    proto_name_of,
    schema_of,
)
from ..encoding.wellknown import Empty, ProtoEnum
from ..errors import DeclarationError
from ..service import Service

__all__ = ["Gathered", "field_json_name", "gather", "proto_file"]

_IMPORTS = {
    "google.protobuf.Empty": "google/protobuf/empty.proto",
    "google.protobuf.Timestamp": "google/protobuf/timestamp.proto",
    "google.protobuf.Duration": "google/protobuf/duration.proto",
    "google.protobuf.Struct": "google/protobuf/struct.proto",
    "google.protobuf.Value": "google/protobuf/struct.proto",
    "google.protobuf.ListValue": "google/protobuf/struct.proto",
}


class _Collected:
    """The messages and enums a service reaches, and what they import."""

    def __init__(self) -> None:
        self.messages: dict[type[Any], MessageSchema] = {}
        self.enums: dict[type[ProtoEnum], None] = {}
        self.imports: set[str] = set()
        self.ndarray = False

    def add_message(self, message_type: type[Any]) -> None:
        if message_type is Empty:
            self.imports.add(_IMPORTS["google.protobuf.Empty"])
            return
        if message_type in self.messages:
            return
        schema = self.messages[message_type] = schema_of(message_type)
        for field in schema.fields:
            for value in (field.key, field.value):
                if value is not None:
                    self.add_value(value)

    def add_value(self, value: TypeSchema) -> None:
        if value.kind == "message":
            assert value.message is not None
            self.add_message(value.message.type)
        elif value.kind == "enum":
            assert value.enum is not None
            self.enums[value.enum] = None
        elif value.kind == "ndarray":
            self.ndarray = True
        elif value.kind.startswith("google.protobuf."):
            self.imports.add(_IMPORTS.get(value.kind, "google/protobuf/wrappers.proto"))


def _doc(cls: type[Any], indent: str) -> list[str]:
    doc = inspect.getdoc(cls) if cls.__doc__ else None
    if not doc or cls.__doc__ in (ProtoEnum.__doc__,):
        return []
    return [f"{indent}// {doc.splitlines()[0]}"]


class _Writer:
    """Writes the collected declarations, nesting each class in its enclosing message."""

    def __init__(self, collected: _Collected, package: str) -> None:
        self.collected = collected
        self.prefix = f".{package}." if package else "."
        declared: list[type[Any]] = [*collected.messages, *collected.enums]
        self.names: dict[type[Any], str] = {}
        self.children: dict[type[Any] | None, list[type[Any]]] = {}
        for cls in declared:
            qualname = proto_name_of(cls)
            parent = self._parent(cls, qualname, declared)
            self.children.setdefault(parent, []).append(cls)
        for cls in declared:
            self._name(cls)
        # A name relative to the package reads best; protoc resolves its first part from
        # the innermost scope out, so it is fully qualified where a nested name could shadow it.
        self.nested = {
            self._short(cls) for parent, kids in self.children.items() if parent for cls in kids
        }
        taken: dict[str, type[Any]] = {}
        for cls, name in self.names.items():
            if taken.setdefault(name, cls) is not cls:
                raise DeclarationError(
                    f"{cls.__module__}.{cls.__qualname__} and {taken[name].__module__}."
                    f"{taken[name].__qualname__} have the same protobuf name {name}"
                )

    def _parent(self, cls: type[Any], qualname: str, declared: list[type[Any]]) -> type[Any] | None:
        outer = qualname.rpartition(".")[0]
        for candidate in declared:
            if (
                candidate in self.collected.messages
                and proto_name_of(candidate) == outer
                and candidate.__module__ == cls.__module__
            ):
                return candidate
        return None

    def _name(self, cls: type[Any]) -> str:
        if cls not in self.names:
            parent = next((p for p, kids in self.children.items() if cls in kids), None)
            short = proto_name_of(cls).rpartition(".")[2]
            self.names[cls] = f"{self._name(parent)}.{short}" if parent is not None else short
        return self.names[cls]

    def reference(self, cls: type[Any]) -> str:
        """How a field or method names a declared message or enum."""
        name = self.names[cls]
        return self.prefix + name if name.partition(".")[0] in self.nested else name

    def type_name(self, value: TypeSchema) -> str:
        if value.kind == "message":
            assert value.message is not None
            return self.reference(value.message.type)
        if value.kind == "enum":
            assert value.enum is not None
            return self.reference(value.enum)
        if value.kind == "ndarray":
            return "NdArray"
        return value.kind  # a scalar or a well-known message's full name

    def field_line(self, field: FieldSchema, indent: str) -> str:
        kind = self.type_name(field.value)
        if field.label == "map":
            assert field.key is not None
            kind = f"map<{self.type_name(field.key)}, {kind}>"
        elif field.label == "repeated":
            kind = f"repeated {kind}"
        elif field.label == "optional" and field.oneof is None and _is_scalar(field.value):
            kind = f"optional {kind}"
        declared = field_json_name(field)
        option = f' [json_name = "{declared}"]' if declared != json_name(field.proto_name) else ""
        return f"{indent}{kind} {field.proto_name} = {field.number}{option};"

    def enum(self, enum_type: type[ProtoEnum], indent: str) -> list[str]:
        members = list(enum_type.__members__.items())
        if 0 not in enum_type.__numbers__:
            raise DeclarationError(f"{enum_type.__qualname__}: a proto3 enum needs a member = 0")
        members.sort(key=lambda item: item[1].number != 0)  # zero first, as proto3 requires
        lines = [*_doc(enum_type, indent), f"{indent}enum {self._short(enum_type)} {{"]
        if len({member.number for _, member in members}) < len(members):
            lines.append(f"{indent}  option allow_alias = true;")
        lines += [f"{indent}  {name} = {member.number};" for name, member in members]
        return [*lines, f"{indent}}}"]

    def message(self, message_type: type[Any], indent: str) -> list[str]:
        schema = self.collected.messages[message_type]
        lines = [*_doc(message_type, indent), f"{indent}message {self._short(message_type)} {{"]
        for child in self.children.get(message_type, []):
            lines += self.declaration(child, indent + "  ")
        groups: dict[str, list[FieldSchema]] = {}
        for field in schema.fields:
            if field.oneof is not None:
                groups.setdefault(field.oneof, []).append(field)
        for field in schema.fields:
            if field.oneof is None:
                lines.append(self.field_line(field, indent + "  "))
            elif groups[field.oneof][0] is field:  # the group goes where its first member is
                lines.append(f"{indent}  oneof {field.oneof} {{")
                lines += [self.field_line(f, indent + "    ") for f in groups[field.oneof]]
                lines.append(f"{indent}  }}")
        if len(lines) == len(_doc(message_type, indent)) + 1:  # no fields: one line
            return [*lines[:-1], lines[-1] + "}"]
        return [*lines, f"{indent}}}"]

    def declaration(self, cls: type[Any], indent: str) -> list[str]:
        if cls in self.collected.enums:
            return self.enum(cls, indent)
        return self.message(cls, indent)

    def _short(self, cls: type[Any]) -> str:
        return self.names[cls].rpartition(".")[2]


@functools.cache
def _camel(attribute: str) -> str:
    """What msgspec's ``rename="camel"`` (:class:`~transport.Message`'s) makes of a name."""
    probe = msgspec.defstruct("Probe", [(attribute, int)], rename="camel")
    return msgspec.structs.fields(probe)[0].encode_name


def field_json_name(schema_field: FieldSchema) -> str:
    """The ``json_name`` of a field: protoc's, unless the declaration names its JSON key."""
    declared = schema_field.path_name
    if declared in (schema_field.attr, _camel(schema_field.attr)):
        return json_name(schema_field.proto_name)
    return declared  # msgspec.field(name=...) or a rename other than camel


def _is_scalar(value: TypeSchema) -> bool:
    return value.kind == "enum" or not (
        value.kind in ("message", "ndarray") or value.kind.startswith("google.protobuf.")
    )


class Gathered(NamedTuple):
    """What one proto3 file of services holds: the ``.proto`` text and the descriptors share it."""

    services: list[type[Service]]
    collected: _Collected
    writer: _Writer
    package: str


def gather(
    declarations: tuple[type[object], ...],
    package: str | None = None,
    messages: tuple[type[Any], ...] = (),
) -> Gathered:
    """Collect and name the messages and enums ``declarations`` reach (see :func:`proto_file`)."""
    # type[object], not type[Service]: declarations are protocols, which mypy
    # will not pass where a concrete type[Service] is expected.
    services = [cast("type[Service]", d) for d in declarations if Service in d.__mro__]
    if not declarations or len(services) < len(declarations):
        raise DeclarationError(f"proto_file takes Service declarations, got {declarations!r}")
    prefixes = {service.service_name().rpartition(".")[0] for service in services}
    if package is None:
        if len(prefixes) > 1:
            raise DeclarationError(f"services of several packages in one file: {sorted(prefixes)}")
        package = prefixes.pop()
    collected = _Collected()
    for service in services:
        for method in service.methods().values():
            collected.add_message(method.request_type)
            collected.add_message(method.response_type)
    for message_type in messages:
        collected.add_message(message_type)
    return Gathered(services, collected, _Writer(collected, package), package)


def proto_file(
    *declarations: type[object],
    package: str | None = None,
    messages: tuple[type[Any], ...] = (),
) -> str:
    """Return the proto3 ``.proto`` text of one or more services of one package.

    ``package`` defaults to the services' name prefix (``t1.fps.model`` for
    ``t1.fps.model.Migrator``); ``messages`` adds message types no method
    reaches. Raise DeclarationError if a message reached is not fully
    numbered, or the services' packages differ.
    """
    services, collected, writer, package = gather(declarations, package, messages)
    lines = ["// Written by `python -m transport proto` from the Python declarations.", ""]
    lines += ['syntax = "proto3";', ""]
    if package:
        lines += [f"package {package};", ""]
    if collected.imports:
        lines += [f'import "{path}";' for path in sorted(collected.imports)] + [""]
    for cls in writer.children.get(None, []):
        lines += [*writer.declaration(cls, ""), ""]
    if collected.ndarray:
        lines += [NDARRAY_PROTO, ""]
    for service in services:
        lines += [*_service(writer, service), ""]
    return "\n".join(lines)


def _service(writer: _Writer, service: type[Service]) -> list[str]:
    lines = [*_doc(service, ""), f"service {service.service_name().rpartition('.')[2]} {{"]
    for name, method in service.methods().items():
        kind = method.cardinality
        request = _rpc_type(writer, method.request_type)
        response = _rpc_type(writer, method.response_type)
        lines.append(
            f"  rpc {name} ({'stream ' if kind.client_streaming else ''}{request}) returns "
            f"({'stream ' if kind.server_streaming else ''}{response});"
        )
    return [*lines, "}"]


def _rpc_type(writer: _Writer, message_type: type[Any]) -> str:
    if message_type is Empty:
        return "google.protobuf.Empty"
    return writer.reference(message_type)
