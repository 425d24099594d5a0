"""A synchronous server (``grpc.server``): every call kind, metadata both ways, half-close."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import pytest

from tests.echo_service import Echo, EchoServer, Note
from transport import AsyncClient, Client, Metadata, bind
from transport.testing import TestServer

Serve = Callable[..., TestServer]

ECHO_METADATA: Metadata = [("x-echo", "hello"), ("x-echo-bin", b"\x00\xffraw")]


@pytest.fixture
def echo(transport_serve: Serve) -> TestServer:
    return transport_serve(bind(Echo, EchoServer()))


def test_unary_unary(echo: TestServer) -> None:
    assert echo.client.call(Echo.Say, Note(text="hi", count=2)) == Note(text="hi", count=2)


def test_unary_stream(echo: TestServer) -> None:
    replies = echo.client.call(Echo.Repeat, Note(text="r", count=3))
    assert [note.text for note in replies] == ["r0", "r1", "r2"]


def test_unary_stream_with_no_responses(echo: TestServer) -> None:
    assert list(echo.client.call(Echo.Repeat, Note(text="r", count=0))) == []


def test_stream_unary_from_an_iterator_and_a_list(echo: TestServer) -> None:
    notes = [Note(text="a"), Note(text="b"), Note(text="c")]
    assert echo.client.call(Echo.Collect, iter(notes)) == Note(text="abc", count=3)
    assert echo.client.call(Echo.Collect, notes) == Note(text="abc", count=3)


def test_stream_unary_with_no_requests(echo: TestServer) -> None:
    assert echo.client.call(Echo.Collect, iter([])) == Note()


def test_stream_stream(echo: TestServer) -> None:
    replies = list(echo.client.call(Echo.Chat, iter([Note(text="x"), Note(text="y")])))
    assert replies == [Note(text="x"), Note(text="y"), Note(text="end", count=2)]


def test_bidi_ping_pong_then_half_close(echo: TestServer) -> None:
    with echo.client.open(Echo.Chat) as chat:
        for text in ("one", "two"):
            chat.write(Note(text=text))
            assert next(chat) == Note(text=text)
        chat.done_writing()
        assert list(chat) == [Note(text="end", count=2)]
        assert chat.done()


def test_half_close_while_the_server_is_still_streaming(echo: TestServer) -> None:
    # The client closes its side before reading anything: the server still has
    # three echoes and its last note to send, and the stream ends cleanly after.
    with echo.client.open(Echo.Chat) as chat:
        for text in ("a", "b", "c"):
            chat.write(Note(text=text))
        chat.done_writing()
        with pytest.raises(ValueError, match="after done_writing"):
            chat.write(Note(text="late"))
        assert [note.text for note in chat] == ["a", "b", "c", "end"]


def test_bidi_with_no_requests(echo: TestServer) -> None:
    with echo.client.open(Echo.Chat) as chat:
        chat.done_writing()
        assert list(chat) == [Note(text="end", count=0)]


def test_leaving_a_response_stream_early_cancels_the_call(echo: TestServer) -> None:
    with echo.client.call(Echo.Repeat, Note(text="r", count=1000)) as replies:
        assert next(replies).text == "r0"
    assert replies.done()


def _metadata_of_call(client: Client, kind: str) -> tuple[Any, tuple[Any, ...], tuple[Any, ...]]:
    """Make one call of ``kind`` with ECHO_METADATA; return the reply and both metadata."""
    if kind == "unary_unary":
        reply, info = client.with_call(Echo.Say, Note(text="m"), metadata=ECHO_METADATA)
        return reply, info.initial_metadata, info.trailing_metadata
    if kind == "stream_unary":
        reply, info = client.with_call(Echo.Collect, iter([Note(text="m")]), metadata=ECHO_METADATA)
        return reply, info.initial_metadata, info.trailing_metadata
    stream = (
        client.call(Echo.Repeat, Note(text="m", count=1), metadata=ECHO_METADATA)
        if kind == "unary_stream"
        else client.call(Echo.Chat, iter([Note(text="m")]), metadata=ECHO_METADATA)
    )
    initial = stream.initial_metadata()
    replies = list(stream)
    return replies, initial, stream.trailing_metadata()


@pytest.mark.parametrize("kind", ["unary_unary", "unary_stream", "stream_unary", "stream_stream"])
def test_metadata_both_ways(transport_serve: Serve, kind: str) -> None:
    implementation = EchoServer()
    server = transport_serve(bind(Echo, implementation))
    reply, initial, trailing = _metadata_of_call(server.client, kind)
    assert reply
    seen = implementation.seen_metadata[-1]
    assert seen["x-echo"] == "hello"
    assert seen["x-echo-bin"] == b"\x00\xffraw"
    assert ("x-initial", "hello") in initial
    assert ("x-initial-bin", b"\x00\xffraw") in initial
    assert ("x-trailing", "hello") in trailing
    assert ("x-trailing-bin", b"\x00\xffraw") in trailing


def test_client_defaults_apply_to_every_call_unless_overridden(transport_serve: Serve) -> None:
    implementation = EchoServer()
    server = transport_serve(bind(Echo, implementation))
    with Client(
        grpc.insecure_channel(server.address), timeout=5.0, metadata=[("x-echo", "default")]
    ) as client:
        client.call(Echo.Say, Note(text="a"))
        client.call(Echo.Say, Note(text="b"), metadata=[("x-echo", "override")])
        client.channel.close()
    assert [seen["x-echo"] for seen in implementation.seen_metadata] == ["default", "override"]


def test_handler_sees_the_deadline(transport_serve: Serve) -> None:
    remaining: list[float | None] = []

    class Probe(EchoServer):
        def Say(self, request: Note, context: Any) -> Note:
            remaining.append(context.time_remaining())
            return request

    server = transport_serve(bind(Echo, Probe()))
    server.client.call(Echo.Say, Note(), timeout=30.0)
    server.client.call(Echo.Say, Note())
    first, second = remaining
    assert first is not None and 20.0 < first <= 31.0  # grpc rounds the timeout up
    assert second is None


def test_request_only_handlers_are_accepted(transport_serve: Serve) -> None:
    class Short(EchoServer):
        def Say(self, request: Note) -> Note:  # type: ignore[override]
            return Note(text=request.text.upper())

    server = transport_serve(bind(Echo, Short()))
    assert server.client.call(Echo.Say, Note(text="quiet")).text == "QUIET"


def test_serves_beside_a_plain_grpcio_service() -> None:
    reverse = grpc.method_handlers_generic_handler(
        "plain.Reverse",
        {"Bytes": grpc.unary_unary_rpc_method_handler(lambda data, context: data[::-1])},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    bind(Echo, EchoServer()).add_to(server)
    server.add_generic_rpc_handlers((reverse,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client.connect(f"127.0.0.1:{port}", timeout=5.0) as client:
            assert client.call(Echo.Say, Note(text="ok")).text == "ok"
            raw: Any = client.channel.unary_unary("/plain.Reverse/Bytes")
            assert raw(b"abc", timeout=5) == b"cba"
    finally:
        server.stop(grace=None).wait(5)


def test_the_client_refuses_bad_requests_and_metadata_before_sending(echo: TestServer) -> None:
    client = echo.client
    with pytest.raises(TypeError, match=r"/transport.tests.Echo/Say takes Note, got str"):
        client.call(Echo.Say, "text")  # type: ignore[misc]
    with pytest.raises(ValueError, match="lower-case"):
        client.call(Echo.Say, Note(), metadata=[("X-Upper", "v")])
    with pytest.raises(ValueError, match="must be bytes"):
        client.call(Echo.Say, Note(), metadata=[("x-data-bin", "text")])
    with pytest.raises(ValueError, match="str value"):
        client.call(Echo.Say, Note(), metadata=[("x-data", b"bytes")])
    with pytest.raises(ValueError, match="reserved"):
        client.call(Echo.Say, Note(), metadata=[("grpc-timeout", "1S")])
    with pytest.raises(TypeError, match="streams its responses"):
        client.with_call(Echo.Repeat, Note())  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="not bidirectional"):
        client.open(Echo.Collect)  # type: ignore[arg-type]
    assert client.call(Echo.Say, Note(text="still fine")).text == "still fine"


def _all_kinds_sync(client: Client) -> list[Any]:
    return [
        client.call(Echo.Say, Note(text="u")),
        [n.text for n in client.call(Echo.Repeat, Note(text="s", count=2))],
        client.call(Echo.Collect, iter([Note(text="c"), Note(text="d")])),
        [n.text for n in client.call(Echo.Chat, iter([Note(text="b")]))],
    ]


EXPECTED_ALL_KINDS = [Note(text="u"), ["s0", "s1"], Note(text="cd", count=2), ["b", "end"]]


def test_every_kind_over_a_separate_channel(echo: TestServer) -> None:
    with echo.connect(timeout=5.0) as client:
        assert _all_kinds_sync(client) == EXPECTED_ALL_KINDS


@pytest.mark.anyio
async def test_every_kind_from_an_asyncio_client(echo: TestServer) -> None:
    async with AsyncClient.connect(echo.address, timeout=5.0) as client:
        said = await client.call(Echo.Say, Note(text="u"))
        repeated = [n.text async for n in client.call(Echo.Repeat, Note(text="s", count=2))]
        collected = await client.call(Echo.Collect, [Note(text="c"), Note(text="d")])
        chatted = [n.text async for n in client.call(Echo.Chat, [Note(text="b")])]
    assert [said, repeated, collected, chatted] == EXPECTED_ALL_KINDS


def test_both_clients_send_on_a_bidi_stream_with_write() -> None:
    from transport import AsyncBidiStream, BidiStream

    assert callable(AsyncBidiStream.write)
    assert BidiStream.send is BidiStream.write  # type: ignore[misc]
