"""``grpc.testing.TestService`` and ``grpc.testing.UnimplementedService``, declared by hand.

As in ``src/proto/grpc/testing/test.proto``. ``UnimplementedCall`` is declared
on both services and implemented on neither, so a server answers UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Protocol

from ..service import Service, rpc
from .messages import (
    Empty,
    SimpleRequest,
    SimpleResponse,
    StreamingInputCallRequest,
    StreamingInputCallResponse,
    StreamingOutputCallRequest,
    StreamingOutputCallResponse,
)

__all__ = ["TestService", "UnimplementedService"]


class TestService(Service, Protocol, name="grpc.testing.TestService"):
    """Every call kind, driven by what the request asks for."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    @rpc
    def EmptyCall(self, request: Empty) -> Empty:
        """One empty request, one empty response."""

    @rpc
    def UnaryCall(self, request: SimpleRequest) -> SimpleResponse:
        """One request, one response as the request asks."""

    @rpc
    def StreamingOutputCall(
        self, request: StreamingOutputCallRequest
    ) -> Iterator[StreamingOutputCallResponse]:
        """One request, a stream of responses (a download)."""

    @rpc
    def StreamingInputCall(
        self, requests: Iterator[StreamingInputCallRequest]
    ) -> StreamingInputCallResponse:
        """A stream of requests (an upload), one response with their total size."""

    @rpc
    def FullDuplexCall(
        self, requests: Iterator[StreamingOutputCallRequest]
    ) -> Iterator[StreamingOutputCallResponse]:
        """Each request answered as it arrives."""

    @rpc
    def HalfDuplexCall(
        self, requests: Iterator[StreamingOutputCallRequest]
    ) -> Iterator[StreamingOutputCallResponse]:
        """All requests read first, then answered in order."""

    @rpc
    def UnimplementedCall(self, request: Empty) -> Empty:
        """Not implemented by any server: UNIMPLEMENTED."""


class UnimplementedService(Service, Protocol, name="grpc.testing.UnimplementedService"):
    """A service no interop server serves."""

    @rpc
    def UnimplementedCall(self, request: Empty) -> Empty:
        """Not implemented by any server: UNIMPLEMENTED."""
