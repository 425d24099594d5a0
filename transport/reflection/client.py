"""Asking a server's reflection service what it serves, for ``list`` and ``call``.

Speaks ``grpc.reflection.v1``, and ``v1alpha`` where a server has only that
one (grpcio's own reflection before 1.60, grpc-go before 1.59...). The
``FileDescriptorProto`` it answers are decoded with the project's own codec,
so listing needs no protobuf runtime.

A server is not trusted to be brief: each question gets its first answer and
the stream is cancelled (a server that keeps answering is never read further);
the files fetched for one command are capped (:data:`MAX_FILES`,
:data:`MAX_FILE_BYTES`); and the questions together have a deadline,
``--timeout`` or :data:`REFLECTION_TIMEOUT` seconds.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from .._status_map import client_errors
from ..errors import DecodeError, RpcError
from ..proto.descriptor import FILE_CODEC
from ..proto.descriptor_messages import (
    FileDescriptorProto,
    MethodDescriptorProto,
    ServiceDescriptorProto,
)
from ..status import StatusCode
from .wire import (
    REQUEST_CODEC,
    RESPONSE_CODEC,
    ServerReflectionRequest,
    ServerReflectionResponse,
)

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "REFLECTION_TIMEOUT",
    "NoDescriptorError",
    "ReflectionError",
    "Reflector",
    "ResolvedMethod",
    "did_you_mean",
]

#: The most files one command takes from a server's answers (a method's file and its imports).
MAX_FILES = 1000
#: The most bytes of serialized files one command takes from a server's answers.
MAX_FILE_BYTES = 32 * 1024 * 1024
#: Seconds all the reflection questions of one command may take without ``--timeout``.
REFLECTION_TIMEOUT = 10.0

_PATHS = (
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)

Metadata = Sequence[tuple[str, str]]
_NO_REFLECTION = "the server does not support the reflection API"


class ReflectionError(Exception):
    """Raised when the server cannot say what it serves: no reflection, or no such name."""

    def __init__(self, message: str, code: StatusCode | None = None) -> None:
        super().__init__(message)
        #: The status of the reflection answer, when the server answered an error.
        self.code = code


class NoDescriptorError(ReflectionError):
    """Raised when the server lists a service but describes none of it (a JSON-only one)."""

    def __init__(self, service: str, why: str) -> None:
        super().__init__(why, StatusCode.NOT_FOUND)
        self.service = service


@dataclass
class ResolvedMethod:
    """A method as reflection describes it, with the files that declare its messages."""

    service: str
    method: MethodDescriptorProto
    files: list[bytes]  # serialized FileDescriptorProto: the service's file and its imports


class Reflector:
    """One server's reflection service, asked one question per stream."""

    def __init__(self, channel: grpc.Channel, metadata: Metadata, timeout: float | None) -> None:
        self._channel = channel
        self._metadata = metadata
        self._timeout = REFLECTION_TIMEOUT if timeout is None else timeout
        self._deadline = time.monotonic() + self._timeout
        self._path: str | None = None
        self._taken = 0  # files taken from answers so far, against MAX_FILES
        self._taken_bytes = 0  # and their size, against MAX_FILE_BYTES

    def ask(self, request: ServerReflectionRequest) -> ServerReflectionResponse:
        """The server's first answer; ReflectionError if it has no reflection or answers an error.

        The stream is cancelled once the first answer is read: whatever else a
        server sends is never read, so it cannot grow this process.
        """
        for path in [self._path] if self._path else _PATHS:
            info = self._channel.stream_stream(
                path,
                request_serializer=REQUEST_CODEC.encode,
                response_deserializer=RESPONSE_CODEC.decode,
            )
            left = max(self._deadline - time.monotonic(), 0.0)
            call = info(iter([request]), timeout=left, metadata=tuple(self._metadata))
            try:
                with client_errors():
                    answer = next(call, None)
            except RpcError as exc:
                if exc.code is StatusCode.UNIMPLEMENTED and path != _PATHS[-1]:
                    continue  # an older server: v1alpha only
                if exc.code is StatusCode.UNIMPLEMENTED:
                    raise ReflectionError(_NO_REFLECTION) from None
                if exc.code is StatusCode.DEADLINE_EXCEEDED:
                    raise ReflectionError(
                        f"the server's reflection did not answer within {self._timeout:g} s "
                        "(--timeout SECONDS sets the bound)"
                    ) from None
                raise ReflectionError(
                    f"reflection failed: {exc.code.name}: {exc.message}"
                ) from None
            except DecodeError as exc:
                raise ReflectionError(f"the reflection answer does not decode: {exc}") from None
            finally:
                call.cancel()  # one question, one answer: the rest is never read
            self._path = path
            if answer is None:
                raise ReflectionError("the reflection service answered nothing")
            if answer.error_response is not None:
                error = answer.error_response
                code = next((c for c in StatusCode if c == error.error_code), None)
                name = code.name if code is not None else str(error.error_code)
                raise ReflectionError(f"{name}: {error.error_message}", code)
            return answer
        raise AssertionError("unreachable")

    def services(self) -> list[str]:
        """The full names of the services the server lists."""
        listed = self.ask(ServerReflectionRequest(list_services="")).list_services_response
        return [service.name for service in listed.service] if listed is not None else []

    def _files(self, request: ServerReflectionRequest) -> list[bytes]:
        """The files of the answer to ``request``, counted against the caps."""
        described = self.ask(request).file_descriptor_response
        files = list(described.file_descriptor_proto) if described is not None else []
        self._taken += len(files)
        self._taken_bytes += sum(len(data) for data in files)
        if self._taken > MAX_FILES or self._taken_bytes > MAX_FILE_BYTES:
            raise ReflectionError(
                f"the server describes more than {MAX_FILES} files or {MAX_FILE_BYTES >> 20} MiB "
                f"of them (the CLI's cap on reflected descriptors); --declarations MODULE "
                "calls without reflection"
            )
        return files

    def service(self, name: str) -> tuple[ServiceDescriptorProto, list[bytes]]:
        """The descriptor of service ``name`` and the files that declare it.

        Raises :class:`NoDescriptorError` when the server lists ``name`` but has
        no descriptor of it, and a :class:`ReflectionError` suggesting the
        closest names the server lists when it has no such service.
        """
        try:
            return self._described(name)
        except ReflectionError as exc:
            if exc.code is not StatusCode.NOT_FOUND:
                raise
            listed = self.services()
            if name in listed:
                raise NoDescriptorError(name, str(exc)) from None
            raise ReflectionError(
                f"the server has no service {name}{did_you_mean(name, listed)}",
                StatusCode.NOT_FOUND,
            ) from None

    def _described(self, name: str) -> tuple[ServiceDescriptorProto, list[bytes]]:
        files = self._files(ServerReflectionRequest(file_containing_symbol=name))
        for data in files:
            file = _decoded(data)
            prefix = f"{file.package}." if file.package else ""
            for service in file.service:
                if prefix + service.name == name:
                    return service, files
        raise ReflectionError(
            f"the server's descriptors do not declare service {name}", StatusCode.NOT_FOUND
        )

    def method(self, service: str, method: str, *, imports: bool = True) -> ResolvedMethod:
        """The descriptor of ``service``'s ``method``; raises as :meth:`service` does, or for it.

        With ``imports`` its files come with every file they import, which a
        protobuf conversion needs; without, only those the first answer gave.
        """
        described, files = self.service(service)
        names = [candidate.name for candidate in described.method]
        for candidate in described.method:
            if candidate.name == method:
                files = self._with_imports(files) if imports else files
                return ResolvedMethod(service, candidate, files)
        raise ReflectionError(
            f"service {service} has no method {method}{did_you_mean(method, names)}",
            StatusCode.NOT_FOUND,
        )

    def _with_imports(self, files: list[bytes]) -> list[bytes]:
        """``files`` and every file they import, asking for those the answers left out.

        Servers send a file with its imports (grpcio, grpc-go, this library);
        an older one sends each file alone, and is asked for its imports by name.
        """
        known: dict[str, bytes] = {}
        wanted: list[tuple[str, str]] = []  # (file, the file that imports it)
        pending, asked, importer = files, "", ""
        while True:
            for data in pending:
                file = _decoded(data)
                if file.name not in known:
                    known[file.name] = data
                    wanted += [(dependency, file.name) for dependency in file.dependency]
            if asked and asked not in known:
                raise ReflectionError(
                    f"{importer} imports {asked}, which the server does not describe"
                )
            while wanted and wanted[-1][0] in known:
                wanted.pop()
            if not wanted:
                return list(known.values())
            asked, importer = wanted.pop()
            try:
                pending = self._files(ServerReflectionRequest(file_by_filename=asked))
            except ReflectionError as exc:
                if exc.code is not StatusCode.NOT_FOUND:
                    raise
                pending = []


def _decoded(data: bytes) -> FileDescriptorProto:
    try:
        return FILE_CODEC.decode(data)
    except DecodeError as exc:
        raise ReflectionError(f"a file descriptor does not decode: {exc}") from None


def did_you_mean(name: str, names: Sequence[str]) -> str:
    """``"; did you mean X?"`` naming the closest of ``names`` to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, names, n=3)
    if not close:  # a short name for a full one: Words for words.v1.Words
        short = {full.rpartition(".")[2]: full for full in names}
        found = difflib.get_close_matches(name.rpartition(".")[2], list(short), n=3)
        close = [short[match] for match in found]
    if not close:
        return f"; it has {', '.join(sorted(names))}" if 0 < len(names) <= 8 else ""
    return f"; did you mean {' or '.join(close)}?"
