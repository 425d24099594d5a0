"""gRPC server reflection (``grpc.reflection.v1`` and ``v1alpha``) built from the declarations.

grpcurl, grpcui, Postman and ``python -m transport list|call`` ask a server
which services it has and how their messages look. :func:`add_reflection`
answers them from the same declarations the server binds, with no ``.proto``
files and no protobuf runtime::

    server = grpc.server(executor)
    binding = bind(KeyValue, KeyValueServer())
    binding.add_to(server)
    add_reflection(server, binding)          # or add_reflection(server, KeyValue)

Every service is listed; a service whose messages are not all numbered (a
JSON-only declaration) has no descriptor, and asking for it answers NOT_FOUND
saying so, as for a service served without a declaration (``listed=``: a
handler mounted by hand). The reflection service speaks protobuf, whatever the
others speak.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import grpc
import grpc.aio

from .._status_map import abort, abort_async
from ..errors import DeclarationError, DecodeError
from ..proto.descriptor import FILE_CODEC, file_descriptor, wellknown_files
from ..proto.descriptor_messages import FileDescriptorProto
from ..proto.export import gather
from ..server import Binding
from ..service import Service
from ..status import StatusCode
from .wire import (
    REQUEST_CODEC,
    RESPONSE_CODEC,
    ErrorResponse,
    ExtensionNumberResponse,
    FileDescriptorResponse,
    ListServiceResponse,
    ServerReflectionRequest,
    ServerReflectionResponse,
    ServerReflectionV1,
    ServerReflectionV1Alpha,
    ServiceResponse,
)

__all__ = ["REFLECTION_SERVICES", "Reflection", "add_reflection"]

_log = logging.getLogger("transport.reflection.service")

#: The full names of the two reflection services :class:`Reflection` serves.
REFLECTION_SERVICES = (ServerReflectionV1.service_name(), ServerReflectionV1Alpha.service_name())
_NOT_FOUND = int(StatusCode.NOT_FOUND)
_INVALID = int(StatusCode.INVALID_ARGUMENT)


class Reflection:
    """The descriptors of some declared services, served as gRPC server reflection.

    Takes bindings or declarations (``bind(...)`` results or ``Service``
    protocols), and in ``listed`` the full names of services served without a
    declaration (listed, with no descriptor); built once, answered from memory.
    Mount with :meth:`add_to`.
    """

    def __init__(self, *services: Binding | type[object], listed: Iterable[str] = ()) -> None:
        declared: list[type[Service]] = [ServerReflectionV1, ServerReflectionV1Alpha]  # type: ignore[type-abstract]
        for item in services:
            service = item.service if isinstance(item, Binding) else item
            if not (isinstance(service, type) and Service in service.__mro__):
                raise DeclarationError(f"{item!r} is neither a Binding nor a Service declaration")
            if service not in declared:
                declared.append(service)  # type: ignore[arg-type]
        self.service_names = [service.service_name() for service in declared]
        self._unnumbered: dict[str, str] = {}
        for name in listed:
            if name not in self.service_names:
                self.service_names.append(name)
                self._unnumbered[name] = "served without a declaration"
        packages: dict[str, list[type[Service]]] = {}
        for service in declared:
            try:
                gather((service,))
            except DeclarationError as exc:
                self._no_descriptor(service, exc)
            else:
                packages.setdefault(service.service_name().rpartition(".")[0], []).append(service)
        files: list[FileDescriptorProto] = []
        for group in packages.values():
            try:  # one file per package: its services' messages must not clash
                files.append(file_descriptor(*group))
            except DeclarationError as exc:
                for service in group:
                    self._no_descriptor(service, exc)
        imported = {dependency for file in files for dependency in file.dependency}
        files += [file for file in wellknown_files() if file.name in imported]
        self._files: dict[str, bytes] = {}
        self._dependencies: dict[str, list[str]] = {}
        self._symbols: dict[str, str] = {}  # full name -> the file declaring it
        self._messages: set[str] = set()
        for file in files:
            self._files[file.name] = FILE_CODEC.encode(file)
            self._dependencies[file.name] = list(file.dependency)
            prefix = f"{file.package}." if file.package else ""
            for enum in file.enum_type:
                self._symbols[prefix + enum.name] = file.name
            for message in file.message_type:
                self._index_message(prefix + message.name, message, file.name)
            for described in file.service:
                self._symbols[prefix + described.name] = file.name
                for method in described.method:
                    self._symbols[f"{prefix}{described.name}.{method.name}"] = file.name

    def _no_descriptor(self, service: type[Service], why: DeclarationError) -> None:
        self._unnumbered[service.service_name()] = str(why)
        _log.info("reflection has no descriptor of %s: %s", service.service_name(), why)

    def _index_message(self, name: str, message: Any, file_name: str) -> None:
        self._symbols[name] = file_name
        self._messages.add(name)
        for enum in message.enum_type:
            self._symbols[f"{name}.{enum.name}"] = file_name
        for nested in message.nested_type:
            self._index_message(f"{name}.{nested.name}", nested, file_name)

    def answer(self, request: ServerReflectionRequest) -> ServerReflectionResponse:
        """The answer to one reflection question."""
        response = ServerReflectionResponse(valid_host=request.host, original_request=request)
        if request.list_services is not None:
            response.list_services_response = ListServiceResponse(
                service=[ServiceResponse(name=name) for name in self.service_names]
            )
        elif request.file_by_filename is not None:
            name = request.file_by_filename
            if name in self._files:
                response.file_descriptor_response = self._with_dependencies(name)
            else:
                response.error_response = _error(_NOT_FOUND, f"no file named {name!r}")
        elif request.file_containing_symbol is not None:
            symbol = request.file_containing_symbol.lstrip(".")
            found = self._symbols.get(symbol)
            if found is None:
                why = self._unnumbered.get(symbol) or self._unnumbered.get(
                    symbol.rpartition(".")[0]
                )
                message = f"unknown symbol {symbol!r}"
                if why is not None:
                    message = f"{symbol} has no protobuf descriptor (JSON-only?): {why}"
                response.error_response = _error(_NOT_FOUND, message)
            else:
                response.file_descriptor_response = self._with_dependencies(found)
        elif request.file_containing_extension is not None:
            extended = request.file_containing_extension.containing_type
            response.error_response = _error(_NOT_FOUND, f"{extended} has no extensions (proto3)")
        elif request.all_extension_numbers_of_type is not None:
            type_name = request.all_extension_numbers_of_type.lstrip(".")
            if type_name in self._messages:
                response.all_extension_numbers_response = ExtensionNumberResponse(
                    base_type_name=type_name
                )
            else:
                response.error_response = _error(_NOT_FOUND, f"unknown message type {type_name!r}")
        else:
            response.error_response = _error(_INVALID, "the request asks nothing")
        return response

    def _with_dependencies(self, name: str) -> FileDescriptorResponse:
        """The file, then every file it imports (transitively), each once."""
        order: list[str] = []
        pending = [name]
        while pending:
            current = pending.pop(0)
            if current not in order:
                order.append(current)
                pending += self._dependencies.get(current, [])
        return FileDescriptorResponse(file_descriptor_proto=[self._files[n] for n in order])

    def _reply(self, data: bytes) -> bytes:
        return RESPONSE_CODEC.encode(self.answer(REQUEST_CODEC.decode(data)))

    def _info(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for data in requests:
            try:
                yield self._reply(data)
            except DecodeError as exc:
                abort(context, StatusCode.INVALID_ARGUMENT, f"bad reflection request: {exc}")

    async def _info_async(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        async for data in requests:
            try:
                reply = self._reply(data)
            except DecodeError as exc:
                await abort_async(
                    context, StatusCode.INVALID_ARGUMENT, f"bad reflection request: {exc}"
                )
            yield reply

    def add_to(self, server: grpc.Server | grpc.aio.Server) -> None:
        """Mount both reflection services on ``server`` (sync or asyncio)."""
        info: Callable[..., Any] = (
            self._info_async if isinstance(server, grpc.aio.Server) else self._info
        )
        # No (de)serialisers: the handler reads and writes protobuf bytes itself.
        method: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(info)
        server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method})
                for name in REFLECTION_SERVICES
            )
        )


def _error(code: int, message: str) -> ErrorResponse:
    return ErrorResponse(error_code=code, error_message=message)


def add_reflection(
    server: grpc.Server | grpc.aio.Server,
    *services: Binding | type[object],
    listed: Iterable[str] = (),
) -> Reflection:
    """Serve reflection of ``services`` (bindings or declarations) on ``server``; return it.

    ``listed`` names services served without a declaration: listed, not described.
    """
    reflection = Reflection(*services, listed=listed)
    reflection.add_to(server)
    return reflection
