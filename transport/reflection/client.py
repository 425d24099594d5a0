"""Asking a server's reflection service what it serves, for ``list`` and ``call``.

Speaks ``grpc.reflection.v1``, and ``v1alpha`` where a server has only that
one (grpcio's own reflection before 1.60, grpc-go before 1.59...). The
``FileDescriptorProto`` it answers are decoded with the project's own codec,
so listing needs no protobuf runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from .._status_map import client_errors
from ..encoding.protobuf._descriptor_messages import (
    MethodDescriptorProto,
    ServiceDescriptorProto,
)
from ..encoding.protobuf.descriptor import FILE_CODEC
from ..errors import DecodeError, RpcError
from ..status import StatusCode
from .wire import (
    REQUEST_CODEC,
    RESPONSE_CODEC,
    ServerReflectionRequest,
    ServerReflectionResponse,
)

__all__ = ["ReflectionError", "Reflector", "ResolvedMethod"]

_PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)

Metadata = Sequence[tuple[str, str]]
_NO_REFLECTION = "the server does not support the reflection API"


class ReflectionError(Exception):
    """Raised when the server cannot say what it serves: no reflection, or no such name."""


@dataclass
class ResolvedMethod:
    """A method as reflection describes it, with the files that declare its messages."""

    service: str
    method: MethodDescriptorProto
    files: list[bytes]  # serialized FileDescriptorProto: the service's file and its imports


class Reflector:
    """One server's reflection service, asked one question per call."""

    def __init__(self, channel: grpc.Channel, metadata: Metadata, timeout: float | None) -> None:
        self._channel = channel
        self._metadata = metadata
        self._timeout = timeout
        self._path: str | None = None

    def ask(self, request: ServerReflectionRequest) -> ServerReflectionResponse:
        """The server's answer; ReflectionError if it has no reflection or answers an error."""
        for path in [self._path] if self._path else _PATHS:
            info = self._channel.stream_stream(
                path,
                request_serializer=REQUEST_CODEC.encode,
                response_deserializer=RESPONSE_CODEC.decode,
            )
            try:
                with client_errors():
                    answers = list(
                        info(iter([request]), timeout=self._timeout, metadata=tuple(self._metadata))
                    )
            except RpcError as exc:
                if exc.code is StatusCode.UNIMPLEMENTED and path != _PATHS[-1]:
                    continue  # an older server: v1alpha only
                if exc.code is StatusCode.UNIMPLEMENTED:
                    raise ReflectionError(
                        "the server does not support the reflection API"
                    ) from None
                raise ReflectionError(
                    f"reflection failed: {exc.code.name}: {exc.message}"
                ) from None
            except DecodeError as exc:
                raise ReflectionError(f"the reflection answer does not decode: {exc}") from None
            self._path = path
            if not answers:
                raise ReflectionError("the reflection service answered nothing")
            answer = answers[0]
            if answer.error_response is not None:
                error = answer.error_response
                code = next((c.name for c in StatusCode if c == error.error_code), "")
                raise ReflectionError(f"{code or error.error_code}: {error.error_message}")
            return answer
        raise AssertionError("unreachable")

    def services(self) -> list[str]:
        """The full names of the services the server lists."""
        listed = self.ask(ServerReflectionRequest(list_services="")).list_services_response
        return [service.name for service in listed.service] if listed is not None else []

    def _files_of(self, symbol: str) -> list[bytes]:
        answer = self.ask(ServerReflectionRequest(file_containing_symbol=symbol))
        described = answer.file_descriptor_response
        return list(described.file_descriptor_proto) if described is not None else []

    def service(self, name: str) -> tuple[ServiceDescriptorProto, list[bytes]]:
        """The descriptor of service ``name`` and the files that declare it."""
        files = self._files_of(name)
        for data in files:
            try:
                file = FILE_CODEC.decode(data)
            except DecodeError as exc:
                raise ReflectionError(f"a file descriptor does not decode: {exc}") from None
            prefix = f"{file.package}." if file.package else ""
            for service in file.service:
                if prefix + service.name == name:
                    return service, files
        raise ReflectionError(f"the server's descriptors do not declare service {name}")

    def method(self, service: str, method: str) -> ResolvedMethod:
        """The descriptor of ``service``'s ``method``."""
        described, files = self.service(service)
        for candidate in described.method:
            if candidate.name == method:
                return ResolvedMethod(service, candidate, files)
        raise ReflectionError(f"service {service} has no method {method}")
