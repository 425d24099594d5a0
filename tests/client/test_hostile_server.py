"""A hostile or broken server: whatever it sends, the caller gets an RpcError with a clear code.

The server here is plain grpcio with a generic handler that answers raw bytes
and raw trailing metadata, as a broken or malicious peer would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, Protocol

import grpc
import numpy as np
import pytest

from transport import AsyncClient, Client, Message, Service, StatusCode, rpc
from transport.encoding.frames import ANNOUNCEMENT, encode_framed
from transport.encoding.json_codec import _enc_hook
from transport.errors import RpcError
from transport.metadata import DETAILS_KEY


class Blob(Message):
    """A message with a bytes field: frames can carry it."""

    name: str = ""
    data: bytes = b""


class Blobs(Service, Protocol, name="test.hostile.Blobs"):
    @rpc
    def Get(self, request: Blob) -> Blob: ...

    @rpc
    def Watch(self, request: Blob) -> Iterator[Blob]: ...


BIG = Blob(name="big", data=bytes(range(256)) * 16)
FRAME = encode_framed(BIG, _enc_hook)
Answer = Callable[[Any], bytes]


def _abort_with(trailer: bytes) -> Answer:
    def answer(context: Any) -> bytes:
        context.abort_with_status(_Status(grpc.StatusCode.FAILED_PRECONDITION, trailer))
        raise AssertionError("unreachable")

    return answer


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, trailer: bytes) -> None:
        self.code = code
        self.details = "broken on purpose"
        self.trailing_metadata = ((DETAILS_KEY, trailer),)


def _framed(context: Any) -> bytes:
    context.set_trailing_metadata((ANNOUNCEMENT,))
    return FRAME


def _overlapping(context: Any) -> bytes:
    # Two references to the same buffer: refused, whatever the client announced.
    head = FRAME[8 : 8 + int.from_bytes(FRAME[4:8], "little")]
    header = head.replace(
        b'"attachments":[', b'"attachments":[{"path":["name"],"offset":0,"length":8},'
    )
    header = header.replace(b'"name":"big"', b'"name":null')
    body = FRAME[8 + len(head) :].lstrip(b"\0")
    lead = b"\0tA1" + len(header).to_bytes(4, "little") + header
    return lead + bytes(-len(lead) % 16) + body


ANSWERS: dict[str, Answer] = {
    "not json": lambda context: b"\xff\xfe not json",
    "wrong type": lambda context: b'{"name": 5}',
    "nested too deeply": lambda context: b'{"other": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "a frame not asked for": _framed,
    "overlapping frame": _overlapping,
    "huge details": _abort_with(b'"' + b"x" * 200_000 + b'"'),
    "deep details": _abort_with(b"[" * 6000),
    "malformed details": _abort_with(b'{"a": "\xff'),
}


class RawHandler(grpc.GenericRpcHandler):
    """Answers every call with the raw bytes of the case named in the request metadata."""

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        case = dict(details.invocation_metadata or ()).get("case", "")
        answer = ANSWERS[str(case)]
        if details.method.endswith("/Get"):
            return grpc.unary_unary_rpc_method_handler(lambda request, context: answer(context))

        def stream(request: bytes, context: Any) -> Iterator[bytes]:
            yield b'{"name": "first"}'
            yield answer(context)

        return grpc.unary_stream_rpc_method_handler(stream)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(4), handlers=[RawHandler()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


EXPECTED = {
    "not json": (StatusCode.INVALID_ARGUMENT, "response does not decode: malformed JSON"),
    "wrong type": (StatusCode.INVALID_ARGUMENT, "Expected `str`, got `int` - at `$.name`"),
    "nested too deeply": (StatusCode.INVALID_ARGUMENT, "nested too deeply"),
    "a frame not asked for": (StatusCode.INVALID_ARGUMENT, "frames were not negotiated"),
    "overlapping frame": (StatusCode.INVALID_ARGUMENT, "overlaps the one before it"),
    "huge details": (StatusCode.RESOURCE_EXHAUSTED, "metadata size exceeds"),
    "deep details": (StatusCode.FAILED_PRECONDITION, "broken on purpose"),
    "malformed details": (StatusCode.FAILED_PRECONDITION, "broken on purpose"),
}


def _check(caught: RpcError, case: str) -> None:
    code, text = EXPECTED[case]
    assert caught.code is code, (case, caught)
    assert text in caught.message, (case, caught.message)
    if code is StatusCode.FAILED_PRECONDITION:
        assert caught.details is None  # dropped, not decoded at any cost


def _check_received(received: list[str], case: str) -> None:
    # Trailers over grpc-core's limit end the stream at once, maybe before its first message.
    assert received == ["first"] or (case == "huge details" and received == [])


@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_the_sync_client_raises_a_clear_rpc_error(endpoint: str, case: str) -> None:
    # Without attachments the client never announced frames, so it accepts none.
    attachments = case == "overlapping frame"
    with Client.connect(endpoint, timeout=10, attachments=attachments) as client:
        with pytest.raises(RpcError) as caught:
            client.call(Blobs.Get, Blob(), metadata=[("case", case)])
        _check(caught.value, case)
        received: list[str] = []
        with pytest.raises(RpcError) as caught:
            for reply in client.call(Blobs.Watch, Blob(), metadata=[("case", case)]):
                received.append(reply.name)
        _check(caught.value, case)
        _check_received(received, case)


@pytest.mark.anyio
@pytest.mark.parametrize("case", sorted(ANSWERS))
async def test_the_asyncio_client_raises_a_clear_rpc_error(endpoint: str, case: str) -> None:
    attachments = case == "overlapping frame"
    async with AsyncClient.connect(endpoint, timeout=10, attachments=attachments) as client:
        with pytest.raises(RpcError) as caught:
            await client.call(Blobs.Get, Blob(), metadata=[("case", case)])
        _check(caught.value, case)
        received: list[str] = []
        with pytest.raises(RpcError) as caught:
            async for reply in client.call(Blobs.Watch, Blob(), metadata=[("case", case)]):
                received.append(reply.name)
        _check(caught.value, case)
        _check_received(received, case)


def test_a_frame_is_read_when_the_client_announced_it(endpoint: str) -> None:
    with Client.connect(endpoint, timeout=10) as client:
        reply = client.call(Blobs.Get, Blob(), metadata=[("case", "a frame not asked for")])
    assert reply == BIG
    assert np.frombuffer(reply.data, np.uint8)[255] == 255
