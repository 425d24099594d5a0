"""Server interceptors (``bind(..., interceptors=...)``): messages, refusal, metadata, errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import (
    AsyncContext,
    Context,
    DeclarationError,
    RpcError,
    ServerCall,
    ServerInterceptor,
    StatusCode,
    bind,
)
from transport.server import _intercepted
from transport.testing import AsyncTestServer, TestServer

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]
Event = tuple[Any, ...]


class Recorder:
    """Records what it sees of each call, each message one by one (sync)."""

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.events: list[Event] = []

    def intercept(
        self, call: ServerCall[Context], request: Any, proceed: Callable[[Any], Any]
    ) -> Any:
        method = call.method
        self.events.append(
            (
                "call",
                self.name,
                method.name,
                method.cardinality.name,
                dict(call.metadata).get("x-user"),
            )
        )
        assert call.peer.startswith("ipv4:127.0.0.1:"), call.peer
        if method.cardinality.client_streaming:
            request = self._requests(request)
        else:
            self.events.append(("request", request))
        try:
            response = proceed(request)
        except Exception as exc:
            self.events.append(("error", type(exc).__name__, getattr(exc, "code", None)))
            raise
        if method.cardinality.server_streaming:
            return self._responses(response)
        self.events.append(("response", response))
        return response

    def _requests(self, requests: Iterator[Note]) -> Iterator[Note]:
        for request in requests:
            self.events.append(("request", request))
            yield request

    def _responses(self, responses: Iterator[Note]) -> Iterator[Note]:
        try:
            for response in responses:
                self.events.append(("response", response))
                yield response
        except RpcError as exc:
            self.events.append(("error", "RpcError", exc.code))
            raise
        self.events.append(("end",))


class AsyncRecorder:
    """:class:`Recorder` for an asyncio binding."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def intercept(
        self, call: ServerCall[AsyncContext], request: Any, proceed: Callable[[Any], Any]
    ) -> Any:
        method = call.method
        self.events.append(
            (
                "call",
                "recorder",
                method.name,
                method.cardinality.name,
                dict(call.metadata).get("x-user"),
            )
        )
        assert call.peer.startswith("ipv4:127.0.0.1:"), call.peer
        if method.cardinality.client_streaming:
            request = self._requests(request)
        else:
            self.events.append(("request", request))
        try:
            response = await proceed(request)
        except Exception as exc:
            self.events.append(("error", type(exc).__name__, getattr(exc, "code", None)))
            raise
        if method.cardinality.server_streaming:
            return self._responses(response)
        self.events.append(("response", response))
        return response

    async def _requests(self, requests: AsyncIterator[Note]) -> AsyncIterator[Note]:
        async for request in requests:
            self.events.append(("request", request))
            yield request

    async def _responses(self, responses: AsyncIterator[Note]) -> AsyncIterator[Note]:
        try:
            async for response in responses:
                self.events.append(("response", response))
                yield response
        except RpcError as exc:
            self.events.append(("error", "RpcError", exc.code))
            raise
        self.events.append(("end",))


def _expected_events(name: str = "recorder") -> list[list[Event]]:
    """What a recorder sees of Say(a), Repeat(r, 2), Collect(a, b) and Chat(x, y), in order."""
    meta = "ann"
    return [
        [("call", name, "Say", "UNARY_UNARY", meta), ("request", Note(text="a")),
         ("response", Note(text="a"))],
        [("call", name, "Repeat", "UNARY_STREAM", meta), ("request", Note(text="r", count=2)),
         ("response", Note(text="r0", count=0)), ("response", Note(text="r1", count=1)),
         ("end",)],
        [("call", name, "Collect", "STREAM_UNARY", meta), ("request", Note(text="a")),
         ("request", Note(text="b")), ("response", Note(text="ab", count=2))],
        [("call", name, "Chat", "STREAM_STREAM", meta), ("request", Note(text="x")),
         ("response", Note(text="x")), ("request", Note(text="y")), ("response", Note(text="y")),
         ("response", Note(text="end", count=2)), ("end",)],
    ]  # fmt: skip


USER = [("x-user", "ann")]


def _last(events: list[Event]) -> Event:
    return events[-1]


def test_a_sync_interceptor_sees_the_decoded_messages_of_every_call_kind(
    transport_serve: Serve,
) -> None:
    recorder = Recorder()
    server = transport_serve(bind(Echo, EchoServer(), interceptors=[recorder]))
    expected = _expected_events()
    client = server.client
    assert client.call(Echo.Say, Note(text="a"), metadata=USER) == Note(text="a")
    assert recorder.events == expected[0]
    recorder.events.clear()
    assert len(list(client.call(Echo.Repeat, Note(text="r", count=2), metadata=USER))) == 2
    assert recorder.events == expected[1]
    recorder.events.clear()
    client.call(Echo.Collect, [Note(text="a"), Note(text="b")], metadata=USER)
    assert recorder.events == expected[2]
    recorder.events.clear()
    with client.open(Echo.Chat, metadata=USER) as chat:  # one message each way at a time
        for text in ("x", "y"):
            chat.write(Note(text=text))
            assert next(chat) == Note(text=text)
        chat.done_writing()
        assert list(chat) == [Note(text="end", count=2)]
    assert recorder.events == expected[3]


async def _notes(*texts: str) -> AsyncIterator[Note]:
    for text in texts:
        yield Note(text=text)


@pytest.mark.anyio
async def test_an_async_interceptor_sees_the_decoded_messages_of_every_call_kind(
    transport_serve_async: ServeAsync,
) -> None:
    recorder = AsyncRecorder()
    server = await transport_serve_async(bind(Echo, AsyncEchoServer(), interceptors=[recorder]))
    expected = _expected_events()
    client = server.client
    assert await client.call(Echo.Say, Note(text="a"), metadata=USER) == Note(text="a")
    assert recorder.events == expected[0]
    recorder.events.clear()
    replies = client.call(Echo.Repeat, Note(text="r", count=2), metadata=USER)
    assert len([reply async for reply in replies]) == 2
    assert recorder.events == expected[1]
    recorder.events.clear()
    await client.call(Echo.Collect, _notes("a", "b"), metadata=USER)
    assert recorder.events == expected[2]
    recorder.events.clear()
    async with client.open(Echo.Chat, metadata=USER) as chat:
        for text in ("x", "y"):
            await chat.write(Note(text=text))
            assert await chat.read() == Note(text=text)
        await chat.done_writing()
        assert [reply async for reply in chat] == [Note(text="end", count=2)]
    assert recorder.events == expected[3]


class Gate:
    """Refuses calls without an ``x-user``; adds initial and trailing metadata; times the call."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    def intercept(
        self, call: ServerCall[Context], request: Any, proceed: Callable[[Any], Any]
    ) -> Any:
        user = dict(call.metadata).get("x-user")
        if user is None:
            raise RpcError(StatusCode.UNAUTHENTICATED, "x-user is missing: send it in metadata")
        call.context.send_initial_metadata([("x-hello", str(user))])
        started = time.perf_counter()
        try:
            return proceed(request)
        finally:
            took = time.perf_counter() - started
            self.durations.append(took)
            call.context.add_trailing_metadata([("x-took-us", str(int(took * 1e6)))])


class AsyncGate(Gate):
    """:class:`Gate` for asyncio."""

    async def intercept(  # type: ignore[override]
        self, call: ServerCall[AsyncContext], request: Any, proceed: Callable[[Any], Any]
    ) -> Any:
        user = dict(call.metadata).get("x-user")
        if user is None:
            raise RpcError(StatusCode.UNAUTHENTICATED, "x-user is missing: send it in metadata")
        await call.context.send_initial_metadata([("x-hello", str(user))])
        started = time.perf_counter()
        try:
            return await proceed(request)
        finally:
            took = time.perf_counter() - started
            self.durations.append(took)
            call.context.add_trailing_metadata([("x-took-us", str(int(took * 1e6)))])


class Slow:
    """A handler that takes a known time, so that the gate's timing can be checked."""

    def Say(self, request: Note) -> Note:
        time.sleep(0.05)
        return request


class AsyncSlow:
    async def Say(self, request: Note) -> Note:
        time.sleep(0.05)
        return request


def test_a_sync_interceptor_refuses_adds_metadata_and_times(transport_serve: Serve) -> None:
    gate = Gate()
    server = transport_serve(bind(Echo, Slow(), interceptors=[gate]))
    with pytest.raises(RpcError) as refused:
        server.client.call(Echo.Say, Note(text="a"))
    assert refused.value.code is StatusCode.UNAUTHENTICATED
    assert "x-user is missing" in refused.value.message
    assert gate.durations == []  # refused before the handler
    reply, info = server.client.with_call(Echo.Say, Note(text="a"), metadata=USER)
    assert reply == Note(text="a")
    assert dict(info.initial_metadata)["x-hello"] == "ann"
    took_us = int(dict(info.trailing_metadata)["x-took-us"])
    assert took_us >= 50_000
    assert gate.durations[0] >= 0.05


@pytest.mark.anyio
async def test_an_async_interceptor_refuses_adds_metadata_and_times(
    transport_serve_async: ServeAsync,
) -> None:
    gate = AsyncGate()
    server = await transport_serve_async(bind(Echo, AsyncSlow(), interceptors=[gate]))
    with pytest.raises(RpcError) as refused:
        await server.client.call(Echo.Say, Note(text="a"))
    assert refused.value.code is StatusCode.UNAUTHENTICATED
    assert gate.durations == []
    reply, info = await server.client.with_call(Echo.Say, Note(text="a"), metadata=USER)
    assert reply == Note(text="a")
    assert dict(info.initial_metadata)["x-hello"] == "ann"
    assert int(dict(info.trailing_metadata)["x-took-us"]) >= 50_000


def test_an_interceptor_sees_the_error_of_a_failing_handler(transport_serve: Serve) -> None:
    recorder = Recorder()
    server = transport_serve(bind(Echo, EchoServer(), interceptors=[recorder]))
    with pytest.raises(RpcError) as failed:
        server.client.call(Echo.Say, Note(text="fail"))
    assert failed.value.code is StatusCode.FAILED_PRECONDITION
    assert _last(recorder.events) == ("error", "RpcError", StatusCode.FAILED_PRECONDITION)
    with pytest.raises(RpcError):
        server.client.call(Echo.Say, Note(text="crash"))
    assert _last(recorder.events) == ("error", "ValueError", None)  # the handler's own exception
    with pytest.raises(RpcError) as too_many:
        list(server.client.call(Echo.Repeat, Note(text="r", count=10**6)))
    assert too_many.value.code is StatusCode.INVALID_ARGUMENT
    assert _last(recorder.events) == ("error", "RpcError", StatusCode.INVALID_ARGUMENT)


@pytest.mark.anyio
async def test_an_async_interceptor_sees_the_error_of_a_failing_handler(
    transport_serve_async: ServeAsync,
) -> None:
    recorder = AsyncRecorder()
    server = await transport_serve_async(bind(Echo, AsyncEchoServer(), interceptors=[recorder]))
    with pytest.raises(RpcError) as failed:
        await server.client.call(Echo.Say, Note(text="fail"))
    assert failed.value.code is StatusCode.FAILED_PRECONDITION
    assert _last(recorder.events) == ("error", "RpcError", StatusCode.FAILED_PRECONDITION)
    with pytest.raises(RpcError):
        await server.client.call(Echo.Say, Note(text="crash"))
    assert _last(recorder.events) == ("error", "ValueError", None)


def test_interceptors_run_outermost_first(transport_serve: Serve) -> None:
    outer, inner = Recorder("outer"), Recorder("inner")
    server = transport_serve(bind(Echo, EchoServer(), interceptors=[outer, inner]))
    events: list[Event] = []
    outer.events = inner.events = events  # one log, in the order they saw things
    server.client.call(Echo.Say, Note(text="a"))
    assert [event[:2] for event in events] == [
        ("call", "outer"),
        ("request", Note(text="a")),
        ("call", "inner"),
        ("request", Note(text="a")),
        ("response", Note(text="a")),
        ("response", Note(text="a")),
    ]


def test_an_interceptor_of_the_other_kind_is_refused_at_bind() -> None:
    with pytest.raises(DeclarationError, match=r"intercept is async def but .* needs def"):
        bind(Echo, EchoServer(), interceptors=[AsyncRecorder()])
    with pytest.raises(DeclarationError, match=r"intercept is def but .* needs async def"):
        bind(Echo, AsyncEchoServer(), interceptors=[Recorder()])
    with pytest.raises(DeclarationError, match="not an interceptor"):
        bind(Echo, EchoServer(), interceptors=[object()])  # type: ignore[list-item]


def test_a_binding_without_interceptors_serves_the_implementation_itself() -> None:
    """No interceptors: no wrapper in the per-call path; set later, they wrap it."""
    server = EchoServer()
    say = Echo.methods()["Say"]
    fn = server.Say
    assert _intercepted(say, fn, (), asynchronous=False) is fn
    assert _intercepted(say, fn, (Recorder(),), asynchronous=False) is not fn
    binding = bind(Echo, server)
    assert binding.interceptors == ()
    recorder: ServerInterceptor = Recorder()
    binding.interceptors = [recorder]
    assert binding.interceptors == (recorder,)
