"""The messages of ``grpc/reflection/v1/reflection.proto`` (also ``v1alpha``: the same fields).

Declared with field numbers, so :class:`~transport.encoding.protobuf.ProtobufCodec`
reads and writes them; the declarations :data:`REFLECTION_V1` and
:data:`REFLECTION_V1ALPHA` let reflection describe itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

import msgspec

from ..encoding.protobuf import Number, ProtobufCodec
from ..encoding.scalars import Int32
from ..service import Service, rpc

__all__ = [
    "REQUEST_CODEC",
    "RESPONSE_CODEC",
    "ErrorResponse",
    "ExtensionNumberResponse",
    "ExtensionRequest",
    "FileDescriptorResponse",
    "ListServiceResponse",
    "ServerReflectionRequest",
    "ServerReflectionResponse",
    "ServiceResponse",
]

_REQUEST = "message_request"
_RESPONSE = "message_response"


class ExtensionRequest(msgspec.Struct, kw_only=True):
    """A type and an extension number of it (proto3 has no extensions: always NOT_FOUND)."""

    containing_type: Annotated[str, Number(1)] = ""
    extension_number: Annotated[Int32, Number(2)] = 0


class ServerReflectionRequest(msgspec.Struct, kw_only=True):
    """One question: exactly one of the ``message_request`` members."""

    host: Annotated[str, Number(1)] = ""
    file_by_filename: Annotated[str | None, Number(3, oneof=_REQUEST)] = None
    file_containing_symbol: Annotated[str | None, Number(4, oneof=_REQUEST)] = None
    file_containing_extension: Annotated[ExtensionRequest | None, Number(5, oneof=_REQUEST)] = None
    all_extension_numbers_of_type: Annotated[str | None, Number(6, oneof=_REQUEST)] = None
    list_services: Annotated[str | None, Number(7, oneof=_REQUEST)] = None


class FileDescriptorResponse(msgspec.Struct, kw_only=True):
    """Serialized ``FileDescriptorProto``: the file asked for, then the files it imports."""

    file_descriptor_proto: Annotated[list[bytes], Number(1)] = []


class ExtensionNumberResponse(msgspec.Struct, kw_only=True):
    """The extension numbers of a message type (none in proto3)."""

    base_type_name: Annotated[str, Number(1)] = ""
    extension_number: Annotated[list[Int32], Number(2)] = []


class ServiceResponse(msgspec.Struct, kw_only=True):
    """A service's full name."""

    name: Annotated[str, Number(1)] = ""


class ListServiceResponse(msgspec.Struct, kw_only=True):
    """Every service the server declares."""

    service: Annotated[list[ServiceResponse], Number(1)] = []


class ErrorResponse(msgspec.Struct, kw_only=True):
    """A question that has no answer: a gRPC status code and why."""

    error_code: Annotated[Int32, Number(1)] = 0
    error_message: Annotated[str, Number(2)] = ""


class ServerReflectionResponse(msgspec.Struct, kw_only=True):
    """One answer, carrying the question it answers."""

    valid_host: Annotated[str, Number(1)] = ""
    original_request: Annotated[ServerReflectionRequest | None, Number(2)] = None
    file_descriptor_response: Annotated[
        FileDescriptorResponse | None, Number(4, oneof=_RESPONSE)
    ] = None
    all_extension_numbers_response: Annotated[
        ExtensionNumberResponse | None, Number(5, oneof=_RESPONSE)
    ] = None
    list_services_response: Annotated[ListServiceResponse | None, Number(6, oneof=_RESPONSE)] = None
    error_response: Annotated[ErrorResponse | None, Number(7, oneof=_RESPONSE)] = None


REQUEST_CODEC = ProtobufCodec(ServerReflectionRequest)
RESPONSE_CODEC = ProtobufCodec(ServerReflectionResponse)


class ServerReflectionV1(Service, Protocol, name="grpc.reflection.v1.ServerReflection"):
    """``grpc.reflection.v1.ServerReflection``: what a server serves, as descriptors."""

    @rpc
    def ServerReflectionInfo(
        self, requests: Iterator[ServerReflectionRequest]
    ) -> Iterator[ServerReflectionResponse]:
        """Answer each question in turn."""


class ServerReflectionV1Alpha(Service, Protocol, name="grpc.reflection.v1alpha.ServerReflection"):
    """``grpc.reflection.v1alpha.ServerReflection``: the same, as grpcurl 1.8 asks it."""

    @rpc
    def ServerReflectionInfo(
        self, requests: Iterator[ServerReflectionRequest]
    ) -> Iterator[ServerReflectionResponse]:
        """Answer each question in turn."""
