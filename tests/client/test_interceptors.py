"""Client interceptors (``connect(..., interceptors=...)``): messages, metadata, refusal, errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import (
    AsyncClient,
    AsyncResponseStream,
    Client,
    ClientCall,
    DeclarationError,
    ResponseStream,
    RpcError,
    StatusCode,
    bind,
)
from transport.testing import AsyncTestServer, TestServer

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]
Event = tuple[Any, ...]
Proceed = Callable[[Any], Any]


class Recorder:
    """Records each call's messages one by one; adds ``x-echo`` metadata; times the call."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.durations: list[float] = []

    def intercept(self, call: ClientCall, request: Any, proceed: Proceed) -> Any:
        method = call.method
        self.events.append(("call", method.name, method.cardinality.name, call.peer))
        call.metadata = (*call.metadata, ("x-echo", "intercepted"))
        if method.cardinality.client_streaming:
            request = self._requests(request)
        else:
            self.events.append(("request", request))
        started = time.perf_counter()
        try:
            response = proceed(request)
        except RpcError as exc:
            self.events.append(("error", exc.code))
            raise
        if method.cardinality.server_streaming:
            return self._responses(response, started)
        self.durations.append(time.perf_counter() - started)
        self.events.append(("response", response))
        return response

    def _requests(self, requests: Iterator[Note]) -> Iterator[Note]:
        for request in requests:
            self.events.append(("request", request))
            yield request

    def _responses(self, responses: Iterator[Note], started: float) -> Iterator[Note]:
        for response in responses:
            self.events.append(("response", response))
            yield response
        self.durations.append(time.perf_counter() - started)
        self.events.append(("end",))


class AsyncRecorder(Recorder):
    """:class:`Recorder` for :class:`~transport.AsyncClient`."""

    async def intercept(self, call: ClientCall, request: Any, proceed: Proceed) -> Any:
        method = call.method
        self.events.append(("call", method.name, method.cardinality.name, call.peer))
        call.metadata = (*call.metadata, ("x-echo", "intercepted"))
        if method.cardinality.client_streaming:
            request = self._requests_async(request)
        else:
            self.events.append(("request", request))
        started = time.perf_counter()
        try:
            response = await proceed(request)
        except RpcError as exc:
            self.events.append(("error", exc.code))
            raise
        if method.cardinality.server_streaming:
            return self._responses_async(response, started)
        self.durations.append(time.perf_counter() - started)
        self.events.append(("response", response))
        return response

    async def _requests_async(self, requests: AsyncIterator[Note]) -> AsyncIterator[Note]:
        async for request in requests:
            self.events.append(("request", request))
            yield request

    async def _responses_async(
        self, responses: AsyncIterator[Note], started: float
    ) -> AsyncIterator[Note]:
        async for response in responses:
            self.events.append(("response", response))
            yield response
        self.durations.append(time.perf_counter() - started)
        self.events.append(("end",))


class Refuse:
    """Refuses every call before it is sent."""

    def intercept(self, call: ClientCall, request: Any, proceed: Proceed) -> Any:
        raise RpcError(StatusCode.PERMISSION_DENIED, f"{call.method.name} is not allowed here")


class AsyncRefuse:
    async def intercept(self, call: ClientCall, request: Any, proceed: Proceed) -> Any:
        raise RpcError(StatusCode.PERMISSION_DENIED, f"{call.method.name} is not allowed here")


def _expected(peer: str) -> list[list[Event]]:
    """What a recorder sees of Say(a), Repeat(r, 2), Collect(a, b) and Chat(x, y)."""
    return [
        [("call", "Say", "UNARY_UNARY", peer), ("request", Note(text="a")),
         ("response", Note(text="a"))],
        [("call", "Repeat", "UNARY_STREAM", peer), ("request", Note(text="r", count=2)),
         ("response", Note(text="r0", count=0)), ("response", Note(text="r1", count=1)),
         ("end",)],
        [("call", "Collect", "STREAM_UNARY", peer), ("request", Note(text="a")),
         ("request", Note(text="b")), ("response", Note(text="ab", count=2))],
        [("call", "Chat", "STREAM_STREAM", peer), ("request", Note(text="x")),
         ("request", Note(text="y")), ("response", Note(text="x")), ("response", Note(text="y")),
         ("response", Note(text="end", count=2)), ("end",)],
    ]  # fmt: skip


def _notes(*texts: str) -> Iterator[Note]:
    for text in texts:
        yield Note(text=text)


def test_a_sync_client_interceptor_sees_the_decoded_messages_of_every_call_kind(
    transport_serve: Serve,
) -> None:
    echo = EchoServer()
    server = transport_serve(bind(Echo, echo))
    recorder = Recorder()
    expected = _expected(server.address)
    with server.connect(interceptors=[recorder]) as client:
        assert client.call(Echo.Say, Note(text="a")) == Note(text="a")
        assert recorder.events == expected[0]
        recorder.events.clear()
        with client.call(Echo.Repeat, Note(text="r", count=2)) as replies:
            assert isinstance(replies, ResponseStream)
            assert len(list(replies)) == 2
            # The interceptor's stream keeps the call's own methods.
            assert dict(replies.trailing_metadata())["x-trailing"] == "intercepted"
            assert replies.done()
        assert recorder.events == expected[1]
        recorder.events.clear()
        assert client.call(Echo.Collect, _notes("a", "b")) == Note(text="ab", count=2)
        assert recorder.events == expected[2]
        recorder.events.clear()
        # All requests are sent before Chat's first answer is read.
        assert len(list(client.call(Echo.Chat, list(_notes("x", "y"))))) == 3
        assert sorted(map(repr, recorder.events)) == sorted(map(repr, expected[3]))
    # Each call carried the metadata the interceptor added.
    assert [seen["x-echo"] for seen in echo.seen_metadata] == ["intercepted"] * 4
    assert len(recorder.durations) == 4


@pytest.mark.anyio
async def test_an_async_client_interceptor_sees_the_decoded_messages_of_every_call_kind(
    transport_serve_async: ServeAsync,
) -> None:
    echo = AsyncEchoServer()
    server = await transport_serve_async(bind(Echo, echo))
    recorder = AsyncRecorder()
    expected = _expected(server.address)
    client = server.connect(interceptors=[recorder])
    async with client:
        assert await client.call(Echo.Say, Note(text="a")) == Note(text="a")
        assert recorder.events == expected[0]
        recorder.events.clear()
        async with client.call(Echo.Repeat, Note(text="r", count=2)) as replies:
            assert isinstance(replies, AsyncResponseStream)
            assert len([reply async for reply in replies]) == 2
            assert dict(await replies.trailing_metadata())["x-trailing"] == "intercepted"
        assert recorder.events == expected[1]
        recorder.events.clear()
        assert await client.call(Echo.Collect, _notes("a", "b")) == Note(text="ab", count=2)
        assert recorder.events == expected[2]
        recorder.events.clear()
        assert len([reply async for reply in client.call(Echo.Chat, list(_notes("x", "y")))]) == 3
        assert sorted(map(repr, recorder.events)) == sorted(map(repr, expected[3]))
    assert [seen["x-echo"] for seen in echo.seen_metadata] == ["intercepted"] * 4
    assert len(recorder.durations) == 4


def test_a_sync_client_interceptor_adds_metadata_and_sees_errors(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    recorder = Recorder()
    with server.connect(interceptors=[recorder], metadata=[("x-user", "ann")]) as client:
        reply, info = client.with_call(Echo.Say, Note(text="a"))
        assert reply == Note(text="a")
        assert dict(info.trailing_metadata)["x-trailing"] == "intercepted"
        with pytest.raises(RpcError) as failed:
            client.call(Echo.Say, Note(text="fail"))
        assert failed.value.code is StatusCode.FAILED_PRECONDITION
        assert recorder.events[-1] == ("error", StatusCode.FAILED_PRECONDITION)


@pytest.mark.anyio
async def test_an_async_client_interceptor_adds_metadata_and_sees_errors(
    transport_serve_async: ServeAsync,
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    recorder = AsyncRecorder()
    async with server.connect(interceptors=[recorder]) as client:
        reply, info = await client.with_call(Echo.Say, Note(text="a"))
        assert reply == Note(text="a")
        assert dict(info.trailing_metadata)["x-trailing"] == "intercepted"
        with pytest.raises(RpcError) as failed:
            await client.call(Echo.Say, Note(text="fail"))
        assert failed.value.code is StatusCode.FAILED_PRECONDITION
        assert recorder.events[-1] == ("error", StatusCode.FAILED_PRECONDITION)


def test_a_client_interceptor_refuses_before_anything_is_sent(transport_serve: Serve) -> None:
    echo = EchoServer()
    server = transport_serve(bind(Echo, echo))
    with server.connect(interceptors=[Refuse()]) as client:
        for call in (
            lambda: client.call(Echo.Say, Note()),
            lambda: client.call(Echo.Repeat, Note(count=1)),
            lambda: client.with_call(Echo.Collect, []),
        ):
            with pytest.raises(RpcError) as refused:
                call()
            assert refused.value.code is StatusCode.PERMISSION_DENIED
    assert echo.seen_metadata == []


@pytest.mark.anyio
async def test_an_async_client_interceptor_refuses_before_anything_is_sent(
    transport_serve_async: ServeAsync,
) -> None:
    echo = AsyncEchoServer()
    server = await transport_serve_async(bind(Echo, echo))
    async with server.connect(interceptors=[AsyncRefuse()]) as client:
        with pytest.raises(RpcError) as refused:
            await client.call(Echo.Say, Note())
        assert refused.value.code is StatusCode.PERMISSION_DENIED
        with pytest.raises(RpcError) as refused:
            await client.call(Echo.Repeat, Note(count=1)).read()
        assert refused.value.code is StatusCode.PERMISSION_DENIED
    assert echo.seen_metadata == []


def test_an_interceptor_of_the_other_kind_is_refused_at_connect() -> None:
    with pytest.raises(DeclarationError, match=r"AsyncRefuse.intercept is async def but Client"):
        Client.connect("127.0.0.1:1", interceptors=[AsyncRefuse()])
    with pytest.raises(DeclarationError, match=r"Refuse.intercept is def but AsyncClient"):
        AsyncClient.connect("127.0.0.1:1", interceptors=[Refuse()])


def _ping_pong_events(peer: str) -> list[Event]:
    return [
        ("call", "Chat", "STREAM_STREAM", peer),
        ("request", Note(text="x")),
        ("response", Note(text="x")),
        ("request", Note(text="y")),
        ("response", Note(text="y")),
        ("response", Note(text="end", count=2)),
        ("end",),
    ]


def test_a_sync_client_interceptor_sees_each_message_of_an_open_stream(
    transport_serve: Serve,
) -> None:
    echo = EchoServer()
    server = transport_serve(bind(Echo, echo))
    recorder = Recorder()
    with server.connect(interceptors=[recorder]) as client:
        with client.open(Echo.Chat) as chat:  # one message each way at a time
            for text in ("x", "y"):
                chat.write(Note(text=text))
                assert next(chat) == Note(text=text)
            chat.done_writing()
            assert list(chat) == [Note(text="end", count=2)]
            assert dict(chat.trailing_metadata())["x-trailing"] == "intercepted"
        assert recorder.events == _ping_pong_events(server.address)
        with client.open(Echo.Chat) as chat, pytest.raises(TypeError, match="takes Note"):
            chat.write("not a note")  # type: ignore[arg-type]
    assert echo.seen_metadata[0]["x-echo"] == "intercepted"


@pytest.mark.anyio
async def test_an_async_client_interceptor_sees_each_message_of_an_open_stream(
    transport_serve_async: ServeAsync,
) -> None:
    echo = AsyncEchoServer()
    server = await transport_serve_async(bind(Echo, echo))
    recorder = AsyncRecorder()
    client = server.connect(interceptors=[recorder])
    async with client, client.open(Echo.Chat) as chat:
        for text in ("x", "y"):
            await chat.write(Note(text=text))
            assert await chat.read() == Note(text=text)
        await chat.done_writing()
        assert [reply async for reply in chat] == [Note(text="end", count=2)]
        assert dict(await chat.trailing_metadata())["x-trailing"] == "intercepted"
    assert recorder.events == _ping_pong_events(server.address)
    assert echo.seen_metadata[0]["x-echo"] == "intercepted"
