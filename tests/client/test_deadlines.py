"""Client cancels and expired deadlines reach the handler; the client sees the status.

Sync handlers learn of it through the context (``wait()`` returns, ``is_active()``
turns False); asyncio handlers get ``CancelledError`` in their task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest

from tests.echo_service import Echo, Note
from transport import AsyncContext, Context, RpcError, StatusCode, bind
from transport.testing import AsyncTestServer, TestServer

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]
KINDS = ["unary_unary", "unary_stream", "stream_unary", "stream_stream"]
DEADLINE = 0.2
BOUND = 5.0  # how long a test waits for the handler to report, at most


class StallingServer:
    """Each method does its first exchange, then waits for the call to end and reports."""

    def __init__(self) -> None:
        self.reports: queue.SimpleQueue[tuple[bool, bool]] = queue.SimpleQueue()
        self.stalled = threading.Event()

    def _stall(self, context: Context) -> None:
        self.stalled.set()
        ended = context.wait(timeout=BOUND)
        self.reports.put((ended, context.is_active()))

    def Say(self, request: Note, context: Context) -> Note:
        self._stall(context)
        return request

    def Repeat(self, request: Note, context: Context) -> Iterator[Note]:
        with self._closing(context):
            yield Note(text="first")
            self._stall(context)

    def Collect(self, requests: Iterator[Note], context: Context) -> Note:
        next(requests)
        self._stall(context)
        return Note()

    def Chat(self, requests: Iterator[Note], context: Context) -> Iterator[Note]:
        with self._closing(context):
            yield next(requests)
            self._stall(context)

    @contextlib.contextmanager
    def _closing(self, context: Context) -> Iterator[None]:
        # A cancel that lands before grpcio asks for the next response closes
        # the handler at its yield instead: it is stopped all the same.
        try:
            yield
        except GeneratorExit:
            self.reports.put((True, context.is_active()))
            raise


@pytest.fixture
def stalling(transport_serve: Serve) -> Iterator[tuple[TestServer, StallingServer]]:
    implementation = StallingServer()
    yield transport_serve(bind(Echo, implementation)), implementation


@pytest.fixture
def hold() -> Iterator[threading.Event]:
    """Set at the end of the test, to release request iterators that never close."""
    event = threading.Event()
    yield event
    event.set()


def _one_then_hold(release: threading.Event) -> Iterator[Note]:
    yield Note(text="first")
    release.wait(BOUND)


def _past_the_deadline(server: TestServer, kind: str, release: threading.Event) -> RpcError:
    client = server.client
    with pytest.raises(RpcError) as caught:
        if kind == "unary_unary":
            client.call(Echo.Say, Note(), timeout=DEADLINE)
        elif kind == "unary_stream":
            replies = client.call(Echo.Repeat, Note(), timeout=DEADLINE)
            assert next(replies).text == "first"
            next(replies)
        elif kind == "stream_unary":
            client.call(Echo.Collect, _one_then_hold(release), timeout=DEADLINE)
        else:
            with client.open(Echo.Chat, timeout=DEADLINE) as chat:
                chat.write(Note(text="first"))
                assert next(chat).text == "first"
                next(chat)
    return caught.value


@pytest.mark.parametrize("kind", KINDS)
def test_an_expired_deadline_reaches_the_sync_handler(
    stalling: tuple[TestServer, StallingServer], hold: threading.Event, kind: str
) -> None:
    server, implementation = stalling
    error = _past_the_deadline(server, kind, hold)
    assert error.code is StatusCode.DEADLINE_EXCEEDED
    ended, active = implementation.reports.get(timeout=BOUND)
    assert ended and not active


@pytest.mark.parametrize("kind", ["unary_stream", "stream_stream"])
def test_a_client_cancel_reaches_the_sync_handler_without_error_logs(
    stalling: tuple[TestServer, StallingServer], caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    server, implementation = stalling
    with caplog.at_level(logging.WARNING):
        if kind == "unary_stream":
            replies = server.client.call(Echo.Repeat, Note())
        else:
            replies = server.client.open(Echo.Chat)
            replies.write(Note(text="first"))
        assert next(replies).text == "first"
        replies.cancel()
        with pytest.raises(RpcError) as caught:
            next(replies)
        assert caught.value.code is StatusCode.CANCELLED
        ended, active = implementation.reports.get(timeout=BOUND)
    assert ended and not active
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("kind", ["unary_unary", "stream_unary"])
def test_a_cancelled_unary_response_call_reaches_the_sync_handler(
    stalling: tuple[TestServer, StallingServer], hold: threading.Event, kind: str
) -> None:
    # The typed client cancels unary responses only through deadlines; grpcio's
    # future API shows that a cancel reaches the handler all the same.
    server, implementation = stalling
    channel: Any = server.client.channel
    if kind == "unary_unary":
        future = channel.unary_unary(Echo.Say.path).future(b"{}")
    else:
        future = channel.stream_unary(Echo.Collect.path).future(
            Echo.Collect.request_codec.encode(n) for n in _one_then_hold(hold)
        )
    assert implementation.stalled.wait(BOUND)
    future.cancel()
    ended, active = implementation.reports.get(timeout=BOUND)
    assert ended and not active


def test_a_sync_handler_never_takes_an_expired_stream_for_a_complete_one(
    transport_serve: Serve, hold: threading.Event
) -> None:
    outcomes: queue.SimpleQueue[str] = queue.SimpleQueue()

    class Reading:
        def Collect(self, requests: Iterator[Note], context: Context) -> Note:
            try:
                count = sum(1 for _ in requests)
            except Exception as exc:  # grpcio's own error, or the library's
                outcomes.put(type(exc).__name__)
                raise
            outcomes.put(f"completed with {count}")
            return Note(count=count)

    server = transport_serve(bind(Echo, Reading()))
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Collect, _one_then_hold(hold), timeout=DEADLINE)
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    # grpc.RpcError when grpcio noticed first, transport.RpcError otherwise.
    assert outcomes.get(timeout=BOUND) == "RpcError"


def test_a_sync_streaming_handler_that_keeps_writing_stops_quietly(
    transport_serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    stopped = threading.Event()

    class Flood:
        def Repeat(self, request: Note, context: Context) -> Iterator[Note]:
            try:
                while True:
                    yield Note(text="x" * 100)
            finally:
                stopped.set()

    server = transport_serve(bind(Echo, Flood()))
    caplog.clear()  # bind() logged the methods Flood leaves out; the call must log nothing
    with caplog.at_level(logging.WARNING):
        replies = server.client.call(Echo.Repeat, Note())
        next(replies)
        replies.cancel()
        assert stopped.wait(BOUND)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_context_wait_and_done_callbacks(transport_serve: Serve) -> None:
    seen: queue.SimpleQueue[object] = queue.SimpleQueue()

    class Watching:
        def Say(self, request: Note, context: Context) -> Note:
            context.add_done_callback(lambda: seen.put("done"))
            # Two threads may wait on one call; neither may miss the end.
            waiter = threading.Thread(target=lambda: seen.put(context.wait(BOUND)))
            waiter.start()
            seen.put(context.wait(timeout=0.01))  # still running: times out
            seen.put(context.is_active())
            seen.put(context)
            return request

    server = transport_serve(bind(Echo, Watching()))
    server.client.call(Echo.Say, Note())
    assert seen.get(timeout=BOUND) is False
    assert seen.get(timeout=BOUND) is True
    context = seen.get(timeout=BOUND)
    assert isinstance(context, Context)
    assert sorted(map(str, (seen.get(timeout=BOUND), seen.get(timeout=BOUND)))) == [
        "True",
        "done",
    ]
    assert context.wait(timeout=0) is True  # after the call ended, at once


# -- asyncio -----------------------------------------------------------------------------


class AsyncStallingServer:
    """Each method does its first exchange, then waits; it reports how its task ended."""

    def __init__(self) -> None:
        self.reports: list[str] = []
        self.reported = anyio.Event()
        # grpc.aio ends the requests of a cancelled call as if the client had
        # half-closed; the library gives the cancel a loop turn to land first,
        # but under load it can come later, so a lingering handler waits for it.
        self.linger = True

    async def _stall(self) -> None:
        try:
            await anyio.sleep(BOUND)
        except asyncio.CancelledError:
            self._report("cancelled")
            raise
        self._report("not cancelled")

    def _report(self, outcome: str) -> None:
        self.reports.append(outcome)
        self.reported.set()

    async def Say(self, request: Note, context: AsyncContext) -> Note:
        await self._stall()
        return request

    async def Repeat(self, request: Note, context: AsyncContext) -> AsyncIterator[Note]:
        yield Note(text="first")
        await self._stall()

    async def Collect(self, requests: AsyncIterator[Note], context: AsyncContext) -> Note:
        # Reads to the end of the stream: a cancel must not look like a half-close.
        try:
            async for _ in requests:
                pass
        except asyncio.CancelledError:
            self._report("cancelled")
            raise
        if self.linger:
            await self._stall()
        else:
            self._report("completed")
        return Note()

    async def Chat(
        self, requests: AsyncIterator[Note], context: AsyncContext
    ) -> AsyncIterator[Note]:
        try:
            async for note in requests:
                yield note
        except asyncio.CancelledError:
            self._report("cancelled")
            raise
        if self.linger:
            await self._stall()
        else:
            self._report("completed")


@pytest.fixture
async def async_stalling(
    transport_serve_async: ServeAsync,
) -> tuple[AsyncTestServer, AsyncStallingServer]:
    implementation = AsyncStallingServer()
    return await transport_serve_async(bind(Echo, implementation)), implementation


async def _one_then_hold_async(release: anyio.Event) -> AsyncIterator[Note]:
    yield Note(text="first")
    with anyio.move_on_after(BOUND):
        await release.wait()


async def _wait_for_report(implementation: AsyncStallingServer) -> list[str]:
    with anyio.fail_after(BOUND):
        await implementation.reported.wait()
    return implementation.reports


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_an_expired_deadline_cancels_the_async_handler(
    async_stalling: tuple[AsyncTestServer, AsyncStallingServer], kind: str
) -> None:
    server, implementation = async_stalling
    client = server.client
    release = anyio.Event()
    with pytest.raises(RpcError) as caught:
        if kind == "unary_unary":
            await client.call(Echo.Say, Note(), timeout=DEADLINE)
        elif kind == "unary_stream":
            replies = client.call(Echo.Repeat, Note(), timeout=DEADLINE)
            assert (await replies.read()) == Note(text="first")
            await replies.read()
        elif kind == "stream_unary":
            await client.call(Echo.Collect, _one_then_hold_async(release), timeout=DEADLINE)
        else:
            chat = client.open(Echo.Chat, timeout=DEADLINE)
            await chat.write(Note(text="first"))
            assert (await chat.read()) == Note(text="first")
            await chat.read()
    release.set()
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert await _wait_for_report(implementation) == ["cancelled"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["unary_stream", "stream_stream"])
async def test_a_stream_cancel_cancels_the_async_handler(
    async_stalling: tuple[AsyncTestServer, AsyncStallingServer], kind: str
) -> None:
    server, implementation = async_stalling
    if kind == "unary_stream":
        replies = server.client.call(Echo.Repeat, Note())
    else:
        replies = chat = server.client.open(Echo.Chat)
        await chat.write(Note(text="first"))
    assert (await replies.read()) == Note(text="first")
    replies.cancel()
    with pytest.raises(RpcError) as caught:
        await replies.read()
    assert caught.value.code is StatusCode.CANCELLED
    assert await _wait_for_report(implementation) == ["cancelled"]
    if kind == "stream_stream":
        with pytest.raises(RpcError) as caught:
            await chat.write(Note())
        assert caught.value.code is StatusCode.CANCELLED


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["unary_unary", "stream_unary"])
async def test_cancelling_the_calling_task_cancels_the_async_handler(
    async_stalling: tuple[AsyncTestServer, AsyncStallingServer], kind: str
) -> None:
    server, implementation = async_stalling
    release = anyio.Event()
    started = anyio.Event()

    async def requests() -> AsyncIterator[Note]:
        started.set()
        async for note in _one_then_hold_async(release):
            yield note

    with anyio.move_on_after(DEADLINE) as scope:
        if kind == "unary_unary":
            await server.client.call(Echo.Say, Note())
        else:
            await server.client.call(Echo.Collect, requests())
    assert scope.cancelled_caught
    release.set()
    assert await _wait_for_report(implementation) == ["cancelled"]


@pytest.mark.anyio
async def test_an_anyio_cancel_scope_around_a_stream_read(
    async_stalling: tuple[AsyncTestServer, AsyncStallingServer],
) -> None:
    server, implementation = async_stalling
    async with server.client.call(Echo.Repeat, Note()) as replies:
        assert (await replies.read()) == Note(text="first")
        with anyio.move_on_after(DEADLINE) as scope:
            await replies.read()
        assert scope.cancelled_caught
    assert await _wait_for_report(implementation) == ["cancelled"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_an_expired_deadline_never_looks_like_a_half_close(
    async_stalling: tuple[AsyncTestServer, AsyncStallingServer], kind: str
) -> None:
    server, implementation = async_stalling
    implementation.linger = False  # the handler believes a clean end of the requests
    release = anyio.Event()
    with pytest.raises(RpcError) as caught:
        if kind == "stream_unary":
            await server.client.call(Echo.Collect, _one_then_hold_async(release), timeout=DEADLINE)
        else:
            replies = server.client.call(Echo.Chat, _one_then_hold_async(release), timeout=DEADLINE)
            assert [note async for note in replies]  # pragma: no cover - raises first
    release.set()
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert await _wait_for_report(implementation) == ["cancelled"]


@pytest.mark.anyio
async def test_a_half_close_is_not_a_cancel(
    async_stalling: tuple[AsyncTestServer, AsyncStallingServer],
) -> None:
    server, implementation = async_stalling
    implementation.linger = False
    assert await server.client.call(Echo.Collect, [Note(), Note()]) == Note()
    assert implementation.reports == ["completed"]
    chat = server.client.open(Echo.Chat)
    await chat.write(Note(text="a"))
    await chat.done_writing()
    assert [note async for note in chat] == [Note(text="a")]
    assert implementation.reports == ["completed", "completed"]


@pytest.mark.anyio
async def test_the_async_handler_can_poll_for_a_cancel(transport_serve_async: ServeAsync) -> None:
    seen: list[bool] = []
    stopped = anyio.Event()

    class Polling:
        async def Repeat(self, request: Note, context: AsyncContext) -> AsyncIterator[Note]:
            seen.append(context.cancelled())
            try:
                yield Note(text="first")
                await anyio.sleep(BOUND)
            finally:
                stopped.set()

    server = await transport_serve_async(bind(Echo, Polling()))
    async with server.client.call(Echo.Repeat, Note()) as replies:
        await replies.read()
    with anyio.fail_after(BOUND):
        await stopped.wait()
    assert seen == [False]
