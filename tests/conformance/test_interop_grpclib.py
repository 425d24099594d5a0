"""The interop cases against a peer that is not this library: grpclib with a JSON codec.

grpclib is an independent gRPC implementation (pure-Python HTTP/2 on h2). The
peer here knows nothing of this library's declarations: it reads and writes
plain dicts with the field names of the proto3 JSON mapping of
``messages.proto``. Both directions are checked: this library's interop client
against a grpclib TestService server, and grpclib client cases against this
library's sync and asyncio servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from grpclib.client import (
    Channel,
    StreamStreamMethod,
    StreamUnaryMethod,
    UnaryStreamMethod,
    UnaryUnaryMethod,
)
from grpclib.const import Cardinality, Handler, Status
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from transport import AsyncClient, bind
from transport.interop import CASES, AsyncTestServiceServer, TestService, TestServiceServer
from transport.interop.cases import SPECIAL_MESSAGE, run_cases
from transport.interop.server import ECHO_INITIAL, ECHO_TRAILING
from transport.testing import serve, serve_async

Json = dict[str, Any]
SERVICE = "/grpc.testing.TestService/"
JsonStream = Stream[Json, Json]


class JsonCodec(CodecBase):
    """Messages as JSON documents, decoded to dicts."""

    # grpcio labels every message plain ``application/grpc``, which grpclib reads
    # as the "proto" subtype; the label is all this changes, the bytes are JSON.
    __content_subtype__ = "proto"

    def encode(self, message: Json, message_type: Any) -> bytes:
        return json.dumps(message).encode()

    def decode(self, data: bytes, message_type: Any) -> Json:
        decoded: Json = json.loads(data)
        return decoded


def _zeros(size: int) -> str:
    return base64.b64encode(bytes(size)).decode()


def _body_size(message: Json | None) -> int:
    assert message is not None
    return len(base64.b64decode(message.get("payload", {}).get("body", "")))


# --- a grpclib TestService server speaking JSON


def _metadata(stream: JsonStream, key: str) -> Any:
    return stream.metadata.get(key) if stream.metadata is not None else None


async def _request(stream: JsonStream) -> Json:
    request = await stream.recv_message()
    assert request is not None
    return request


class GrpclibTestService:
    """TestService on grpclib, written from the interop descriptions alone."""

    def __mapping__(self) -> dict[str, Handler]:
        kinds = {
            "EmptyCall": (self.empty_call, Cardinality.UNARY_UNARY),
            "UnaryCall": (self.unary_call, Cardinality.UNARY_UNARY),
            "StreamingOutputCall": (self.streaming_output_call, Cardinality.UNARY_STREAM),
            "StreamingInputCall": (self.streaming_input_call, Cardinality.STREAM_UNARY),
            "FullDuplexCall": (self.full_duplex_call, Cardinality.STREAM_STREAM),
            "HalfDuplexCall": (self.half_duplex_call, Cardinality.STREAM_STREAM),
        }
        return {SERVICE + name: Handler(fn, kind, dict, dict) for name, (fn, kind) in kinds.items()}

    @staticmethod
    def _trailing(stream: JsonStream) -> dict[str, Any]:
        value = _metadata(stream, ECHO_TRAILING)
        return {ECHO_TRAILING: value} if value is not None else {}

    @staticmethod
    async def _start(stream: JsonStream) -> None:
        value = _metadata(stream, ECHO_INITIAL)
        await stream.send_initial_metadata(metadata={ECHO_INITIAL: value} if value else None)

    async def _ended_by_status(self, stream: JsonStream, request: Json) -> bool:
        status = request.get("responseStatus") or {}
        if not status.get("code"):
            return False
        await stream.send_trailing_metadata(
            status=Status(status["code"]),
            status_message=status.get("message", ""),
            metadata=self._trailing(stream),
        )
        return True

    async def _respond(self, stream: JsonStream, request: Json) -> None:
        for parameters in request.get("responseParameters", []):
            await asyncio.sleep(parameters.get("intervalUs", 0) / 1e6)
            await stream.send_message({"payload": {"body": _zeros(parameters.get("size", 0))}})

    async def empty_call(self, stream: JsonStream) -> None:
        await stream.recv_message()
        await stream.send_message({})

    async def unary_call(self, stream: JsonStream) -> None:
        request = await _request(stream)
        await self._start(stream)
        if await self._ended_by_status(stream, request):
            return
        body = _zeros(request.get("responseSize", 0))
        await stream.send_message({"payload": {"body": body}})
        await stream.send_trailing_metadata(metadata=self._trailing(stream))

    async def streaming_output_call(self, stream: JsonStream) -> None:
        request = await _request(stream)
        await self._start(stream)
        if not await self._ended_by_status(stream, request):
            await self._respond(stream, request)
            await stream.send_trailing_metadata(metadata=self._trailing(stream))

    async def streaming_input_call(self, stream: JsonStream) -> None:
        total = sum([_body_size(request) async for request in stream])
        await stream.send_message({"aggregatedPayloadSize": total})

    async def full_duplex_call(self, stream: JsonStream) -> None:
        await self._start(stream)
        async for request in stream:
            if await self._ended_by_status(stream, request):
                return
            await self._respond(stream, request)
        await stream.send_trailing_metadata(metadata=self._trailing(stream))

    async def half_duplex_call(self, stream: JsonStream) -> None:
        await self._start(stream)
        requests = [request async for request in stream]
        for request in requests:
            if await self._ended_by_status(stream, request):
                return
            await self._respond(stream, request)
        await stream.send_trailing_metadata(metadata=self._trailing(stream))


class ClosingServer(Server):
    """grpclib's server, which also closes its client connections when told to.

    grpclib's ``close()`` leaves open connections to their clients, and a grpcio
    client may keep one open after its channel is closed; a connection still
    open when the event loop ends would be collected unclosed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: list[tuple[Any, asyncio.Event]] = []

    def _protocol_factory(self) -> Any:
        protocol: Any = super()._protocol_factory()
        lost = asyncio.Event()
        connection_lost = protocol.connection_lost

        def on_lost(exc: BaseException | None) -> None:
            connection_lost(exc)
            lost.set()  # the socket is closed right after this returns

        protocol.connection_lost = on_lost
        self._connections.append((protocol, lost))
        return protocol

    async def close_connections(self) -> None:
        """Close every client connection and wait until its socket is closed."""
        for protocol, lost in self._connections:
            if not lost.is_set():
                protocol.processor.close()
                await asyncio.wait_for(lost.wait(), timeout=10)


@pytest.mark.anyio
async def test_this_library_client_passes_every_case_against_grpclib_server() -> None:
    server = ClosingServer([GrpclibTestService()], codec=JsonCodec())
    await server.start("127.0.0.1", 0)
    try:
        port = cast(Any, server)._server.sockets[0].getsockname()[1]
        async with AsyncClient.connect(f"127.0.0.1:{port}", timeout=10) as client:
            results = await run_cases(client, list(CASES), time_limit=10)
    finally:
        server.close()
        await server.close_connections()
        await server.wait_closed()
    assert [str(r) for r in results if not r.passed] == []


# --- grpclib client cases against this library's servers


def _method(kind: type[Any], channel: Channel, path: str) -> Any:
    return kind(channel, path, dict, dict)


def _unary(channel: Channel, name: str) -> Any:
    return _method(UnaryUnaryMethod, channel, SERVICE + name)


def _bidi(channel: Channel) -> Any:
    return _method(StreamStreamMethod, channel, SERVICE + "FullDuplexCall")


def _echo_request(size: int, body: int = 0) -> Json:
    request: Json = {"responseParameters": [{"size": size}]}
    if body:
        request["payload"] = {"body": _zeros(body)}
    return request


async def empty_unary(channel: Channel) -> None:
    assert await _unary(channel, "EmptyCall")({}) == {}


async def large_unary(channel: Channel) -> None:
    request = {"responseSize": 314159, "payload": {"body": _zeros(271828)}}
    assert _body_size(await _unary(channel, "UnaryCall")(request)) == 314159


async def client_streaming(channel: Channel) -> None:
    method = _method(StreamUnaryMethod, channel, SERVICE + "StreamingInputCall")
    requests = [{"payload": {"body": _zeros(n)}} for n in (27182, 8, 1828, 45904)]
    assert (await method(requests))["aggregatedPayloadSize"] == 74922


async def server_streaming(channel: Channel) -> None:
    method = _method(UnaryStreamMethod, channel, SERVICE + "StreamingOutputCall")
    sizes = [31415, 9, 2653, 58979]
    responses = await method({"responseParameters": [{"size": n} for n in sizes]})
    assert [_body_size(r) for r in responses] == sizes


async def ping_pong(channel: Channel) -> None:
    async with _bidi(channel).open() as stream:
        for size, body in zip((31415, 9, 2653, 58979), (27182, 8, 1828, 45904), strict=True):
            await stream.send_message(_echo_request(size, body))
            assert _body_size(await stream.recv_message()) == size
        await stream.end()
        assert await stream.recv_message() is None


async def empty_stream(channel: Channel) -> None:
    async with _bidi(channel).open() as stream:
        await stream.send_request()
        await stream.end()
        assert await stream.recv_message() is None


async def cancel_after_begin(channel: Channel) -> None:
    method = _method(StreamUnaryMethod, channel, SERVICE + "StreamingInputCall")
    async with method.open() as stream:
        await stream.send_request()
        await stream.cancel()


async def cancel_after_first_response(channel: Channel) -> None:
    async with _bidi(channel).open() as stream:
        await stream.send_message(_echo_request(31415, 27182))
        assert _body_size(await stream.recv_message()) == 31415
        await stream.cancel()


async def timeout_on_sleeping_server(channel: Channel) -> None:
    # grpclib enforces the deadline itself (TimeoutError) or hears the server's status.
    with pytest.raises((GRPCError, asyncio.TimeoutError)) as ended:
        async with _bidi(channel).open(timeout=0.001) as stream:
            await stream.send_message({"payload": {"body": _zeros(27182)}})
            await stream.recv_message()
    if isinstance(ended.value, GRPCError):
        assert ended.value.status is Status.DEADLINE_EXCEEDED


async def custom_metadata(channel: Channel) -> None:
    metadata = {ECHO_INITIAL: "test_initial_metadata_value", ECHO_TRAILING: b"\xab\xab\xab"}
    request = {"responseSize": 314159, "payload": {"body": _zeros(271828)}}
    for method, message in (
        (_unary(channel, "UnaryCall"), request),
        (_bidi(channel), _echo_request(314159, 271828)),
    ):
        async with method.open(metadata=metadata) as stream:
            await stream.send_message(message, end=True)
            assert _body_size(await stream.recv_message()) == 314159
            await stream.recv_trailing_metadata()
        assert stream.initial_metadata[ECHO_INITIAL] == "test_initial_metadata_value"
        assert stream.trailing_metadata[ECHO_TRAILING] == b"\xab\xab\xab"


async def _expect_echoed_status(channel: Channel, message: str, *, bidi: bool) -> None:
    request = {"responseStatus": {"code": 2, "message": message}}
    with pytest.raises(GRPCError) as ended:
        if bidi:
            async with _bidi(channel).open() as stream:
                await stream.send_message(request, end=True)
                await stream.recv_message()
        else:
            await _unary(channel, "UnaryCall")(request)
    assert ended.value.status is Status.UNKNOWN
    assert ended.value.message == message


async def status_code_and_message(channel: Channel) -> None:
    await _expect_echoed_status(channel, "test status message", bidi=False)
    await _expect_echoed_status(channel, "test status message", bidi=True)


async def special_status_message(channel: Channel) -> None:
    await _expect_echoed_status(channel, SPECIAL_MESSAGE, bidi=False)


async def unimplemented_method(channel: Channel) -> None:
    with pytest.raises(GRPCError) as ended:
        await _unary(channel, "UnimplementedCall")({})
    assert ended.value.status is Status.UNIMPLEMENTED


async def unimplemented_service(channel: Channel) -> None:
    path = "/grpc.testing.UnimplementedService/UnimplementedCall"
    with pytest.raises(GRPCError) as ended:
        await _method(UnaryUnaryMethod, channel, path)({})
    assert ended.value.status is Status.UNIMPLEMENTED


PEER_CASES: dict[str, Callable[[Channel], Awaitable[None]]] = {
    "empty_unary": empty_unary,
    "large_unary": large_unary,
    "client_streaming": client_streaming,
    "server_streaming": server_streaming,
    "ping_pong": ping_pong,
    "empty_stream": empty_stream,
    "cancel_after_begin": cancel_after_begin,
    "cancel_after_first_response": cancel_after_first_response,
    "timeout_on_sleeping_server": timeout_on_sleeping_server,
    "custom_metadata": custom_metadata,
    "status_code_and_message": status_code_and_message,
    "special_status_message": special_status_message,
    "unimplemented_method": unimplemented_method,
    "unimplemented_service": unimplemented_service,
}


async def _run_peer_cases(port: int) -> None:
    assert list(PEER_CASES) == list(CASES)  # the same cases, in the same order
    channel = Channel("127.0.0.1", port, codec=JsonCodec())
    try:
        for name, case in PEER_CASES.items():
            try:
                await asyncio.wait_for(case(channel), timeout=10)
            except BaseException as exc:
                raise AssertionError(f"grpclib case {name} failed: {exc!r}") from exc
        # The server still answers after every case, cancels included.
        await empty_unary(channel)
    finally:
        channel.close()


@pytest.mark.anyio
async def test_grpclib_client_passes_every_case_against_the_sync_server() -> None:
    with serve(bind(TestService, TestServiceServer())) as server:
        await _run_peer_cases(server.port)


@pytest.mark.anyio
async def test_grpclib_client_passes_every_case_against_the_asyncio_server() -> None:
    async with serve_async(bind(TestService, AsyncTestServiceServer())) as server:
        await _run_peer_cases(server.port)
