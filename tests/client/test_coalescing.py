"""Coalesced streams end to end: batches between two ends of this library, never to others."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import msgspec
import pytest

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import AsyncClient, Client, JsonCodec, RpcError, StatusCode, bind
from transport.encoding import batches as _batches
from transport.testing import AsyncTestServer, TestServer

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]
NOTES = [Note(text=f"n{n}", count=n) for n in range(2_000)]
ENCODE = JsonCodec(Note).encode


def _raw_repeat(address: str, count: int, announce: str | None) -> list[bytes]:
    """The gRPC messages of Echo.Repeat as a plain grpcio client receives them."""
    metadata = [(_batches.KEY, announce)] if announce is not None else None
    with grpc.insecure_channel(address) as channel:
        repeat: Any = channel.unary_stream("/transport.tests.Echo/Repeat")
        return list(repeat(ENCODE(Note(text="r", count=count)), metadata=metadata, timeout=30))


def test_a_server_stream_goes_in_batches_only_to_a_client_that_reads_them(
    transport_serve: Serve,
) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    expected = [ENCODE(Note(text=f"r{n}", count=n)) for n in range(2_000)]
    plain = _raw_repeat(server.address, 2_000, None)
    assert plain == expected  # a JSON peer: one message per gRPC message
    batched = _raw_repeat(server.address, 2_000, "65536")
    assert _batches.flatten(batched) == expected
    assert len(batched) < len(expected)
    small = _raw_repeat(server.address, 2_000, "512")
    assert _batches.flatten(small) == expected and max(map(len, small)) <= 512


@pytest.mark.anyio
async def test_an_asyncio_server_stream_goes_in_batches_to_a_client_that_reads_them(
    transport_serve_async: ServeAsync,
) -> None:
    import anyio

    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    expected = [ENCODE(Note(text=f"r{n}", count=n)) for n in range(2_000)]
    plain = await anyio.to_thread.run_sync(_raw_repeat, server.address, 2_000, None)
    assert plain == expected
    batched = await anyio.to_thread.run_sync(_raw_repeat, server.address, 2_000, "1024")
    assert _batches.flatten(batched) == expected
    assert len(batched) < len(expected) and max(map(len, batched)) <= 1024


def test_a_client_with_a_small_receive_limit_gets_batches_that_fit(
    transport_serve: Serve,
) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    with Client.connect(server.address, max_receive_message_bytes=1024) as client:
        replies = list(client.call(Echo.Repeat, Note(text="x" * 100, count=500)))
    assert [note.count for note in replies] == list(range(500))


class RecordingServer:
    """A plain grpcio Collect that keeps each gRPC message it receives (and may announce)."""

    def __init__(self, announce: bool) -> None:
        self.announce = announce
        self.received: list[list[bytes]] = []
        self.requests: list[tuple[bool, bytes]] = []

    def collect(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        if self.announce:
            context.send_initial_metadata((_batches.announcement(_batches.CEILING),))
        self.received.append(list(requests))
        return ENCODE(Note(count=len(self.received[-1])))

    def repeat(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        announced = any(key == _batches.KEY for key, _ in context.invocation_metadata())
        if self.announce and announced:
            context.send_initial_metadata((_batches.announcement(_batches.CEILING),))
        self.requests.append((announced, request))
        yield ENCODE(Note(text="r"))

    def chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        if self.announce:
            context.send_initial_metadata((_batches.announcement(_batches.CEILING),))
        self.received.append([])
        for data in requests:
            self.received[-1].append(data)
            yield b"{}"


def _recording(announce: bool) -> tuple[grpc.Server, int, RecordingServer]:
    recorder = RecordingServer(announce)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers: dict[str, Any] = {
        "Collect": grpc.stream_unary_rpc_method_handler(recorder.collect),
        "Chat": grpc.stream_stream_rpc_method_handler(recorder.chat),
        "Repeat": grpc.unary_stream_rpc_method_handler(recorder.repeat),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("transport.tests.Echo", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port, recorder


@pytest.mark.parametrize("announce", [True, False], ids=["server-reads-batches", "json-peer"])
def test_a_client_batches_requests_once_the_server_said_it_reads_them(announce: bool) -> None:
    server, port, recorder = _recording(announce)
    try:
        with Client.connect(f"127.0.0.1:{port}") as client:
            for _ in range(3):
                assert client.call(Echo.Collect, iter(NOTES)) is not None
    finally:
        server.stop(None)
    expected = [ENCODE(note) for note in NOTES]
    first, *later = recorder.received
    assert first == expected  # nothing is known before the server's first answer
    for received in later:
        assert _batches.flatten(received) == expected
        if announce:
            assert len(received) < len(expected)
        else:
            assert received == expected  # a JSON peer: one message per gRPC message


@pytest.mark.parametrize("announce", [True, False], ids=["server-reads-batches", "json-peer"])
def test_a_server_stream_says_in_band_that_it_reads_batches_once_the_server_is_known(
    announce: bool,
) -> None:
    server, port, recorder = _recording(announce)
    request = ENCODE(Note(text="a"))
    try:
        with Client.connect(f"127.0.0.1:{port}") as client:
            for _ in range(3):
                assert list(client.call(Echo.Repeat, Note(text="a"))) == [Note(text="r")]
        with Client.connect(f"127.0.0.1:{port}", max_receive_message_bytes=1024) as client:
            for _ in range(2):
                list(client.call(Echo.Repeat, Note(text="a")))
    finally:
        server.stop(None)
    if not announce:  # a JSON peer sees metadata and JSON, every time
        assert recorder.requests == [(True, request)] * 5
        return
    # No metadata once the server is known: the request is a batch of one.
    assert recorder.requests[:3] == [(True, request)] + [(False, _batches.pack([request]))] * 2
    # A client that reads smaller batches keeps saying how large, in metadata.
    assert recorder.requests[3:] == [(True, request)] * 2


def test_a_bidi_stream_batches_what_is_queued_once_the_server_answered() -> None:
    server, port, recorder = _recording(True)
    try:
        with Client.connect(f"127.0.0.1:{port}") as client, client.open(Echo.Chat) as chat:
            chat.send(NOTES[0])
            next(chat)  # the server's initial metadata comes with its first answer
            for note in NOTES[1:]:
                chat.send(note)
            chat.done_writing()
            list(chat)  # the recording server answers once per gRPC message
    finally:
        server.stop(None)
    (received,) = recorder.received
    assert _batches.flatten(received) == [ENCODE(note) for note in NOTES]
    assert len(received) < len(NOTES)


@pytest.mark.anyio
async def test_asyncio_bidi_writes_go_in_batches_once_the_server_answered() -> None:
    server, port, recorder = _recording(True)
    try:
        async with AsyncClient.connect(f"127.0.0.1:{port}") as client:
            chat = client.open(Echo.Chat)
            await chat.write(NOTES[0])
            assert await chat.read() is not None  # with the server's initial metadata
            for note in NOTES[1:]:
                await chat.write(note)
            await chat.done_writing()
            async for _ in chat:
                pass
    finally:
        server.stop(None)
    (received,) = recorder.received
    assert _batches.flatten(received) == [ENCODE(note) for note in NOTES]
    assert len(received) < len(NOTES)


def test_every_direction_between_two_ends_of_the_library(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    client = server.client
    for _ in range(2):  # the second call knows that the server reads batches
        assert client.call(Echo.Collect, iter(NOTES)).count == len(NOTES)
        replies = list(client.call(Echo.Chat, iter(NOTES)))
        assert replies[:-1] == NOTES and replies[-1] == Note(text="end", count=len(NOTES))
    with client.open(Echo.Chat) as chat:
        for note in NOTES:
            chat.send(note)
        chat.done_writing()
        assert list(chat)[:-1] == NOTES


@pytest.mark.anyio
async def test_every_direction_on_asyncio(transport_serve_async: ServeAsync) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    client: AsyncClient = server.client
    for _ in range(2):
        assert (await client.call(Echo.Collect, NOTES)).count == len(NOTES)
        replies = [note async for note in client.call(Echo.Chat, NOTES)]
        assert replies[:-1] == NOTES
    chat = client.open(Echo.Chat)
    for note in NOTES[:100]:
        await chat.write(note)
    await chat.done_writing()
    assert [note async for note in chat][:-1] == NOTES[:100]


def test_an_error_mid_stream_comes_after_the_messages_before_it(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    notes = [*NOTES[:500], Note(text="fail")]
    received = []
    with pytest.raises(RpcError) as failed:
        for note in server.client.call(Echo.Chat, iter(notes)):
            received.append(note)
    assert failed.value.code is StatusCode.FAILED_PRECONDITION
    assert received == NOTES[:500]


@pytest.mark.anyio
async def test_an_asyncio_error_mid_stream_comes_after_the_messages_before_it(
    transport_serve_async: ServeAsync,
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    notes = [*NOTES[:500], Note(text="fail")]
    received = []
    with pytest.raises(RpcError) as failed:
        async for note in server.client.call(Echo.Chat, notes):
            received.append(note)
    assert failed.value.code is StatusCode.FAILED_PRECONDITION
    assert received == NOTES[:500]


@pytest.mark.parametrize("announced", [True, False])
def test_a_malformed_batch_from_a_server_is_invalid_argument(announced: bool) -> None:
    def repeat(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        if announced:
            context.send_initial_metadata((_batches.announcement(_batches.CEILING),))
        yield _batches.MAGIC + b"\x05\x00\x00\x00"

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "transport.tests.Echo", {"Repeat": grpc.unary_stream_rpc_method_handler(repeat)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client.connect(f"127.0.0.1:{port}") as client, pytest.raises(RpcError) as failed:
            list(client.call(Echo.Repeat, Note()))
        assert failed.value.code is StatusCode.INVALID_ARGUMENT
        # Read as a batch only from a server that said it sends them; else it is no JSON.
        assert ("batch frame" if announced else "malformed JSON") in failed.value.message
    finally:
        server.stop(None)


def test_the_announcement_is_not_user_metadata(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    with server.client.open(Echo.Chat, metadata=[("x-echo", "hi")]) as chat:
        chat.send(Note(text="a"))
        next(chat)
        assert chat.initial_metadata() == (("x-initial", "hi"),)
    assert msgspec.json.decode(ENCODE(NOTES[0])) == {"text": "n0"}
