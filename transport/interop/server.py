"""The interop server: ``grpc.testing.TestService`` as the interop descriptions ask.

Two implementations of one behaviour, :class:`TestServiceServer` for
``grpc.server`` and :class:`AsyncTestServiceServer` for ``grpc.aio.server``:

- metadata ``x-grpc-test-echo-initial`` comes back in the initial metadata and
  ``x-grpc-test-echo-trailing-bin`` in the trailing metadata;
- a request with ``responseStatus`` ends the call with that code and message,
  exactly, before any response;
- ``responseParameters`` ask for one response each, of ``size`` zero bytes,
  sent ``intervalUs`` microseconds after the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator

from ..context import AsyncContext, Context
from ..errors import RpcError
from ..options import DEFAULT_MAX_MESSAGE_BYTES
from ..status import StatusCode
from .messages import (
    EchoStatus,
    Empty,
    Payload,
    ResponseParameters,
    SimpleRequest,
    SimpleResponse,
    StreamingInputCallRequest,
    StreamingInputCallResponse,
    StreamingOutputCallRequest,
    StreamingOutputCallResponse,
)

__all__ = ["ECHO_INITIAL", "ECHO_TRAILING", "AsyncTestServiceServer", "TestServiceServer"]

#: Request metadata echoed back in the response's initial metadata.
ECHO_INITIAL = "x-grpc-test-echo-initial"
#: Request metadata echoed back in the response's trailing metadata.
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"

# A payload is made of zero bytes in memory before it is encoded: refuse sizes a
# response could not carry anyway instead of allocating them.
_MAX_PAYLOAD_BYTES = DEFAULT_MAX_MESSAGE_BYTES


def _payload(size: int) -> Payload:
    if size < 0:
        raise RpcError(StatusCode.INVALID_ARGUMENT, f"payload size {size} is negative")
    if size > _MAX_PAYLOAD_BYTES:
        raise RpcError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"payload size {size} is above the limit of {_MAX_PAYLOAD_BYTES} bytes",
        )
    return Payload(body=bytes(size))


def _response(parameters: ResponseParameters) -> StreamingOutputCallResponse:
    return StreamingOutputCallResponse(payload=_payload(parameters.size))


def _echo_status(status: EchoStatus | None) -> None:
    """End the call as the request asks (code 0 asks for nothing)."""
    if status is None or status.code == 0:
        return
    try:
        code = StatusCode(status.code)
    except ValueError:
        # grpcio can only send the codes it knows.
        raise RpcError(
            StatusCode.INVALID_ARGUMENT, f"responseStatus.code {status.code} is not a status code"
        ) from None
    raise RpcError(code, status.message)


def _payload_size(requests: Iterable[StreamingInputCallRequest]) -> int:
    return sum(len(r.payload.body) for r in requests if r.payload is not None)


def _echo_metadata(context: Context) -> None:
    initial = context.metadata_value(ECHO_INITIAL)
    if initial is not None:
        context.send_initial_metadata([(ECHO_INITIAL, initial)])
    trailing = context.metadata_value(ECHO_TRAILING)
    if trailing is not None:
        context.set_trailing_metadata([(ECHO_TRAILING, trailing)])


async def _echo_metadata_async(context: AsyncContext) -> None:
    initial = context.metadata_value(ECHO_INITIAL)
    if initial is not None:
        await context.send_initial_metadata([(ECHO_INITIAL, initial)])
    trailing = context.metadata_value(ECHO_TRAILING)
    if trailing is not None:
        context.set_trailing_metadata([(ECHO_TRAILING, trailing)])


class TestServiceServer:
    """``grpc.testing.TestService`` for ``grpc.server`` (``UnimplementedCall`` left out)."""

    __test__ = False  # not a pytest test class

    def EmptyCall(self, request: Empty, context: Context) -> Empty:
        """Answer the empty message."""
        return Empty()

    def UnaryCall(self, request: SimpleRequest, context: Context) -> SimpleResponse:
        """Answer a payload of ``responseSize`` bytes, or the status asked for."""
        _echo_metadata(context)
        _echo_status(request.response_status)
        return SimpleResponse(payload=_payload(request.response_size))

    def StreamingOutputCall(
        self, request: StreamingOutputCallRequest, context: Context
    ) -> Iterator[StreamingOutputCallResponse]:
        """Stream one response per entry of ``responseParameters``."""
        _echo_metadata(context)
        _echo_status(request.response_status)
        yield from self._respond(request.response_parameters, context)

    def StreamingInputCall(
        self, requests: Iterator[StreamingInputCallRequest], context: Context
    ) -> StreamingInputCallResponse:
        """Answer the total size of the payloads received, once the client half-closes."""
        return StreamingInputCallResponse(aggregated_payload_size=_payload_size(requests))

    def FullDuplexCall(
        self, requests: Iterator[StreamingOutputCallRequest], context: Context
    ) -> Iterator[StreamingOutputCallResponse]:
        """Answer each request as it arrives."""
        _echo_metadata(context)
        for request in requests:
            _echo_status(request.response_status)
            yield from self._respond(request.response_parameters, context)

    def HalfDuplexCall(
        self, requests: Iterator[StreamingOutputCallRequest], context: Context
    ) -> Iterator[StreamingOutputCallResponse]:
        """Read every request first, then answer them in order."""
        _echo_metadata(context)
        buffered = list(requests)
        for request in buffered:
            _echo_status(request.response_status)
            yield from self._respond(request.response_parameters, context)

    def _respond(
        self, parameters: list[ResponseParameters], context: Context
    ) -> Iterator[StreamingOutputCallResponse]:
        for entry in parameters:
            # wait() returns early, and True, when the client has gone away.
            if entry.interval_us > 0 and context.wait(entry.interval_us / 1e6):
                return
            yield _response(entry)


class AsyncTestServiceServer:
    """``grpc.testing.TestService`` for ``grpc.aio.server`` (``UnimplementedCall`` left out)."""

    __test__ = False

    async def EmptyCall(self, request: Empty, context: AsyncContext) -> Empty:
        """Answer the empty message."""
        return Empty()

    async def UnaryCall(self, request: SimpleRequest, context: AsyncContext) -> SimpleResponse:
        """Answer a payload of ``responseSize`` bytes, or the status asked for."""
        await _echo_metadata_async(context)
        _echo_status(request.response_status)
        return SimpleResponse(payload=_payload(request.response_size))

    async def StreamingOutputCall(
        self, request: StreamingOutputCallRequest, context: AsyncContext
    ) -> AsyncIterator[StreamingOutputCallResponse]:
        """Stream one response per entry of ``responseParameters``."""
        await _echo_metadata_async(context)
        _echo_status(request.response_status)
        async for response in self._respond(request.response_parameters):
            yield response

    async def StreamingInputCall(
        self, requests: AsyncIterator[StreamingInputCallRequest], context: AsyncContext
    ) -> StreamingInputCallResponse:
        """Answer the total size of the payloads received, once the client half-closes."""
        return StreamingInputCallResponse(
            aggregated_payload_size=_payload_size([r async for r in requests])
        )

    async def FullDuplexCall(
        self, requests: AsyncIterator[StreamingOutputCallRequest], context: AsyncContext
    ) -> AsyncIterator[StreamingOutputCallResponse]:
        """Answer each request as it arrives."""
        await _echo_metadata_async(context)
        async for request in requests:
            _echo_status(request.response_status)
            async for response in self._respond(request.response_parameters):
                yield response

    async def HalfDuplexCall(
        self, requests: AsyncIterator[StreamingOutputCallRequest], context: AsyncContext
    ) -> AsyncIterator[StreamingOutputCallResponse]:
        """Read every request first, then answer them in order."""
        await _echo_metadata_async(context)
        buffered = [request async for request in requests]
        for request in buffered:
            _echo_status(request.response_status)
            async for response in self._respond(request.response_parameters):
                yield response

    async def _respond(
        self, parameters: list[ResponseParameters]
    ) -> AsyncIterator[StreamingOutputCallResponse]:
        for entry in parameters:
            if entry.interval_us > 0:
                # A client cancel or deadline cancels this task, and the sleep with it.
                await asyncio.sleep(entry.interval_us / 1e6)
            yield _response(entry)
