"""An asyncio server (``grpc.aio.server``): every call kind, metadata both ways, half-close."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import grpc
import grpc.aio
import pytest

from tests.echo_service import AsyncEchoServer, Echo, Note
from transport import AsyncClient, AsyncContext, Client, Metadata, bind
from transport.testing import AsyncTestServer

pytestmark = pytest.mark.anyio

ServeAsync = Callable[..., Awaitable[AsyncTestServer]]

ECHO_METADATA: Metadata = [("x-echo", "hello"), ("x-echo-bin", b"\x00\xffraw")]


@pytest.fixture
async def echo(transport_serve_async: ServeAsync) -> AsyncTestServer:
    return await transport_serve_async(bind(Echo, AsyncEchoServer()))


async def _notes(*texts: str) -> AsyncIterator[Note]:
    for text in texts:
        yield Note(text=text)


async def test_unary_unary(echo: AsyncTestServer) -> None:
    assert await echo.client.call(Echo.Say, Note(text="hi", count=2)) == Note(text="hi", count=2)


async def test_unary_stream(echo: AsyncTestServer) -> None:
    replies = echo.client.call(Echo.Repeat, Note(text="r", count=3))
    assert [note.text async for note in replies] == ["r0", "r1", "r2"]


async def test_unary_stream_with_no_responses(echo: AsyncTestServer) -> None:
    replies = echo.client.call(Echo.Repeat, Note(text="r", count=0))
    assert [note async for note in replies] == []
    assert await replies.read() is None


async def test_stream_unary_from_a_list_and_an_async_iterator(echo: AsyncTestServer) -> None:
    notes = [Note(text="a"), Note(text="b"), Note(text="c")]
    assert await echo.client.call(Echo.Collect, notes) == Note(text="abc", count=3)
    assert await echo.client.call(Echo.Collect, _notes("a", "b")) == Note(text="ab", count=2)


async def test_stream_unary_with_no_requests(echo: AsyncTestServer) -> None:
    assert await echo.client.call(Echo.Collect, []) == Note()


async def test_stream_stream(echo: AsyncTestServer) -> None:
    replies = [note async for note in echo.client.call(Echo.Chat, _notes("x", "y"))]
    assert replies == [Note(text="x"), Note(text="y"), Note(text="end", count=2)]


async def test_bidi_ping_pong_then_half_close(echo: AsyncTestServer) -> None:
    async with echo.client.open(Echo.Chat) as chat:
        for text in ("one", "two"):
            await chat.write(Note(text=text))
            assert await chat.read() == Note(text=text)
        await chat.done_writing()
        assert await chat.read() == Note(text="end", count=2)
        assert await chat.read() is None
        assert chat.done()


async def test_half_close_while_the_server_is_still_streaming(echo: AsyncTestServer) -> None:
    async with echo.client.open(Echo.Chat) as chat:
        for text in ("a", "b", "c"):
            await chat.write(Note(text=text))
        await chat.done_writing()
        assert [note.text async for note in chat] == ["a", "b", "c", "end"]


async def test_bidi_with_no_requests(echo: AsyncTestServer) -> None:
    chat = echo.client.open(Echo.Chat)
    await chat.done_writing()
    assert [note async for note in chat] == [Note(text="end", count=0)]


async def test_leaving_a_response_stream_early_cancels_the_call(echo: AsyncTestServer) -> None:
    async with echo.client.call(Echo.Repeat, Note(text="r", count=1000)) as replies:
        assert (await replies.read()) == Note(text="r0")
    assert replies.done()


async def _metadata_of_call(
    client: AsyncClient, kind: str
) -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
    """Make one call of ``kind`` with ECHO_METADATA; return the reply and both metadata."""
    if kind == "unary_unary":
        reply, info = await client.with_call(Echo.Say, Note(text="m"), metadata=ECHO_METADATA)
        return reply, info.initial_metadata, info.trailing_metadata
    if kind == "stream_unary":
        reply, info = await client.with_call(Echo.Collect, _notes("m"), metadata=ECHO_METADATA)
        return reply, info.initial_metadata, info.trailing_metadata
    stream = (
        client.call(Echo.Repeat, Note(text="m", count=1), metadata=ECHO_METADATA)
        if kind == "unary_stream"
        else client.call(Echo.Chat, _notes("m"), metadata=ECHO_METADATA)
    )
    initial = await stream.initial_metadata()
    replies = [note async for note in stream]
    return replies, initial, await stream.trailing_metadata()


@pytest.mark.parametrize("kind", ["unary_unary", "unary_stream", "stream_unary", "stream_stream"])
async def test_metadata_both_ways(transport_serve_async: ServeAsync, kind: str) -> None:
    implementation = AsyncEchoServer()
    server = await transport_serve_async(bind(Echo, implementation))
    reply, initial, trailing = await _metadata_of_call(server.client, kind)
    assert reply
    seen = implementation.seen_metadata[-1]
    assert seen["x-echo"] == "hello"
    assert seen["x-echo-bin"] == b"\x00\xffraw"
    assert ("x-initial", "hello") in initial
    assert ("x-initial-bin", b"\x00\xffraw") in initial
    assert ("x-trailing", "hello") in trailing
    assert ("x-trailing-bin", b"\x00\xffraw") in trailing


async def test_client_defaults_apply_to_every_call_unless_overridden(
    transport_serve_async: ServeAsync,
) -> None:
    implementation = AsyncEchoServer()
    server = await transport_serve_async(bind(Echo, implementation))
    async with AsyncClient(
        grpc.aio.insecure_channel(server.address), timeout=5.0, metadata=[("x-echo", "default")]
    ) as client:
        await client.call(Echo.Say, Note(text="a"))
        await client.call(Echo.Say, Note(text="b"), metadata=[("x-echo", "override")])
        await client.channel.close()
    assert [seen["x-echo"] for seen in implementation.seen_metadata] == ["default", "override"]


async def test_handler_sees_the_deadline_and_the_peer(transport_serve_async: ServeAsync) -> None:
    seen: list[tuple[float | None, str]] = []

    class Probe(AsyncEchoServer):
        async def Say(self, request: Note, context: AsyncContext) -> Note:
            seen.append((context.time_remaining(), context.peer()))
            return request

    server = await transport_serve_async(bind(Echo, Probe()))
    await server.client.call(Echo.Say, Note(), timeout=30.0)
    await server.client.call(Echo.Say, Note())
    (first, peer), (second, _) = seen
    assert first is not None and 20.0 < first <= 31.0  # grpc rounds the timeout up
    assert second is None
    assert "127.0.0.1" in peer


async def test_request_only_handlers_are_accepted(transport_serve_async: ServeAsync) -> None:
    class Short(AsyncEchoServer):
        async def Say(self, request: Note) -> Note:  # type: ignore[override]
            return Note(text=request.text.upper())

    server = await transport_serve_async(bind(Echo, Short()))
    assert (await server.client.call(Echo.Say, Note(text="quiet"))).text == "QUIET"


async def test_serves_beside_a_plain_grpcio_service() -> None:
    async def reverse_bytes(data: bytes, context: Any) -> bytes:
        return data[::-1]

    reverse = grpc.method_handlers_generic_handler(
        "plain.Reverse", {"Bytes": grpc.unary_unary_rpc_method_handler(reverse_bytes)}
    )
    server = grpc.aio.server()
    bind(Echo, AsyncEchoServer()).add_to(server)
    server.add_generic_rpc_handlers((reverse,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with AsyncClient.connect(f"127.0.0.1:{port}", timeout=5.0) as client:
            assert (await client.call(Echo.Say, Note(text="ok"))).text == "ok"
            raw: Any = client.channel.unary_unary("/plain.Reverse/Bytes")
            assert await raw(b"abc", timeout=5) == b"cba"
    finally:
        await server.stop(grace=None)


async def test_the_client_refuses_bad_requests_before_sending(echo: AsyncTestServer) -> None:
    client = echo.client
    with pytest.raises(TypeError, match=r"/transport.tests.Echo/Say takes Note, got str"):
        client.call(Echo.Say, "text")  # type: ignore[misc]
    with pytest.raises(ValueError, match="lower-case"):
        client.call(Echo.Say, Note(), metadata=[("X-Upper", "v")])
    with pytest.raises(TypeError, match="streams its responses"):
        await client.with_call(Echo.Repeat, Note())  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="not bidirectional"):
        client.open(Echo.Collect)  # type: ignore[arg-type]
    chat = client.open(Echo.Chat)
    with pytest.raises(TypeError, match="takes Note"):
        await chat.write("text")  # type: ignore[arg-type]
    chat.cancel()
    assert (await client.call(Echo.Say, Note(text="still fine"))).text == "still fine"


EXPECTED_ALL_KINDS = [Note(text="u"), ["s0", "s1"], Note(text="cd", count=2), ["b", "end"]]


def _all_kinds_sync(address: str) -> list[Any]:
    with Client.connect(address, timeout=5.0) as client:
        return [
            client.call(Echo.Say, Note(text="u")),
            [n.text for n in client.call(Echo.Repeat, Note(text="s", count=2))],
            client.call(Echo.Collect, iter([Note(text="c"), Note(text="d")])),
            [n.text for n in client.call(Echo.Chat, iter([Note(text="b")]))],
        ]


async def test_every_kind_from_a_sync_client(echo: AsyncTestServer) -> None:
    # The sync client blocks, so it runs in a worker thread while the loop serves.
    results = await anyio.to_thread.run_sync(_all_kinds_sync, echo.address)
    assert results == EXPECTED_ALL_KINDS
