"""Faults: a server killed mid-stream, clients that cancel or vanish, graceful shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import pytest

from tests.eventually import eventually_async
from transport import (
    AsyncClient,
    AsyncContext,
    Client,
    Context,
    Message,
    RpcError,
    Service,
    StatusCode,
    bind,
    rpc,
)
from transport.health.service import Health, ServingStatus
from transport.interop import AsyncTestServiceServer, TestService, TestServiceServer
from transport.interop.messages import (
    Empty,
    Payload,
    ResponseParameters,
    StreamingInputCallRequest,
    StreamingOutputCallRequest,
)
from transport.runtime import ModelInfo, OpenSessionRequest, dial_leader_async, running
from transport.testing import serve, serve_async

#: Seconds within which a client must learn that its server died.
BOUND = 5.0

# --- the server process is killed (SIGKILL) in the middle of a stream


@contextmanager
def _interop_server(*flags: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "transport.interop", "server", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        yield process, int(line.rsplit(":", 1)[1])
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _endless_stream() -> StreamingOutputCallRequest:
    return StreamingOutputCallRequest(
        response_parameters=[ResponseParameters(size=8, interval_us=20_000)] * 10_000
    )


def _kill_mid_stream_sync(kind: str, client: Client, process: subprocess.Popen[str]) -> None:
    if kind == "server stream":
        responses = client.call(TestService.StreamingOutputCall, _endless_stream())
        next(responses)
        process.kill()
        list(responses)
    elif kind == "client stream":

        def requests() -> Iterator[StreamingInputCallRequest]:
            for sent in range(10_000):
                if sent == 3:
                    process.kill()
                yield StreamingInputCallRequest(payload=Payload(body=b"x"))
                time.sleep(0.01)

        client.call(TestService.StreamingInputCall, requests())
    else:
        with client.open(TestService.FullDuplexCall) as bidi:
            bidi.write(StreamingOutputCallRequest(response_parameters=[ResponseParameters(size=1)]))
            next(bidi)
            process.kill()
            next(bidi)


async def _kill_mid_stream_async(
    kind: str, client: AsyncClient, process: subprocess.Popen[str]
) -> None:
    if kind == "server stream":
        responses = client.call(TestService.StreamingOutputCall, _endless_stream())
        await responses.read()
        process.kill()
        async for _ in responses:
            pass
    elif kind == "client stream":

        async def requests() -> AsyncIterator[StreamingInputCallRequest]:
            for sent in range(10_000):
                if sent == 3:
                    process.kill()
                yield StreamingInputCallRequest(payload=Payload(body=b"x"))
                await asyncio.sleep(0.01)

        await client.call(TestService.StreamingInputCall, requests())
    else:
        bidi = client.open(TestService.FullDuplexCall)
        await bidi.write(
            StreamingOutputCallRequest(response_parameters=[ResponseParameters(size=1)])
        )
        await bidi.read()
        process.kill()
        await bidi.read()


KINDS = ["server stream", "client stream", "bidi stream"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_server_killed_mid_stream_sync_client_gets_unavailable(kind: str) -> None:
    with (
        _interop_server() as (process, port),
        Client.connect(f"127.0.0.1:{port}", timeout=30) as client,
    ):
        started = time.monotonic()
        with pytest.raises(RpcError) as failed:
            _kill_mid_stream_sync(kind, client, process)
        elapsed = time.monotonic() - started
    assert failed.value.code is StatusCode.UNAVAILABLE, failed.value
    assert elapsed < BOUND
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_asyncio_server_killed_mid_stream_asyncio_client_gets_unavailable(kind: str) -> None:
    with _interop_server("--asyncio") as (process, port):
        async with AsyncClient.connect(f"127.0.0.1:{port}", timeout=30) as client:
            started = time.monotonic()
            with pytest.raises(RpcError) as failed:
                await asyncio.wait_for(_kill_mid_stream_async(kind, client, process), BOUND)
            elapsed = time.monotonic() - started
    assert failed.value.code is StatusCode.UNAVAILABLE, failed.value
    assert elapsed < BOUND


# --- the client cancels or disappears: the handler stops and lets go of its resources


class Tick(Message):
    n: int = 0


class Feed(Service, Protocol, name="test.faults.Feed"):
    @rpc
    def Subscribe(self, request: Tick) -> Iterator[Tick]: ...

    @rpc
    def Upload(self, requests: Iterator[Tick]) -> Tick: ...

    @rpc
    def Relay(self, requests: Iterator[Tick]) -> Iterator[Tick]: ...


class Resources:
    """Counts what handlers hold; says when the first is taken and when all are released."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.held = 0
        self.taken = threading.Event()
        self.released = threading.Event()

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            self.held += 1
            self.released.clear()
            self.taken.set()
        try:
            yield
        finally:
            with self._lock:
                self.held -= 1
                if self.held == 0:
                    self.released.set()


class FeedServer:
    """Streams that never end by themselves: only the client can stop them."""

    def __init__(self) -> None:
        self.resources = Resources()

    def Subscribe(self, request: Tick, context: Context) -> Iterator[Tick]:
        with self.resources.hold():
            n = 0
            while True:
                yield Tick(n=n)
                n += 1
                context.wait(0.005)

    def Upload(self, requests: Iterator[Tick], context: Context) -> Tick:
        with self.resources.hold():
            return Tick(n=sum(1 for _ in requests))

    def Relay(self, requests: Iterator[Tick], context: Context) -> Iterator[Tick]:
        with self.resources.hold():
            yield from requests


class AsyncFeedServer:
    def __init__(self) -> None:
        self.resources = Resources()

    async def Subscribe(self, request: Tick, context: AsyncContext) -> AsyncIterator[Tick]:
        with self.resources.hold():
            n = 0
            while True:
                yield Tick(n=n)
                n += 1
                await asyncio.sleep(0.005)

    async def Upload(self, requests: AsyncIterator[Tick], context: AsyncContext) -> Tick:
        with self.resources.hold():
            return Tick(n=len([r async for r in requests]))

    async def Relay(
        self, requests: AsyncIterator[Tick], context: AsyncContext
    ) -> AsyncIterator[Tick]:
        with self.resources.hold():
            async for request in requests:
                yield request


def _endless_ticks(stop: threading.Event) -> Iterator[Tick]:
    while not stop.is_set():
        yield Tick(n=1)
        stop.wait(0.005)


@pytest.mark.parametrize("method", ["Subscribe", "Upload", "Relay"])
def test_client_cancel_stops_the_sync_handler_and_releases_its_resources(method: str) -> None:
    feed = FeedServer()
    stop = threading.Event()
    with serve(bind(Feed, feed)) as server:
        client = server.client
        if method == "Subscribe":
            stream: Any = client.call(Feed.Subscribe, Tick(), timeout=30)
            next(stream)
        elif method == "Relay":
            stream = client.call(Feed.Relay, _endless_ticks(stop), timeout=30)
            next(stream)
        else:
            # A stream-unary call has no handle to cancel; a deadline ends it instead.
            with pytest.raises(RpcError) as expired:
                client.call(Feed.Upload, _endless_ticks(stop), timeout=0.3)
            assert expired.value.code is StatusCode.DEADLINE_EXCEEDED
            stream = None
        assert feed.resources.taken.wait(BOUND)
        if stream is not None:
            stream.cancel()
            with pytest.raises(RpcError) as cancelled:
                list(stream)
            assert cancelled.value.code is StatusCode.CANCELLED
        assert feed.resources.released.wait(BOUND), "the handler kept its resources"
        stop.set()
        assert feed.resources.held == 0
        assert next(iter(client.call(Feed.Subscribe, Tick(), timeout=10))).n == 0


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["Subscribe", "Upload", "Relay"])
async def test_client_cancel_stops_the_asyncio_handler_and_releases_its_resources(
    method: str,
) -> None:
    feed = AsyncFeedServer()
    async with serve_async(bind(Feed, feed)) as server:
        client = server.client

        async def ticks() -> AsyncIterator[Tick]:
            while True:
                yield Tick(n=1)
                await asyncio.sleep(0.005)

        if method == "Upload":
            call = asyncio.ensure_future(client.call(Feed.Upload, ticks(), timeout=30))
            await asyncio.to_thread(feed.resources.taken.wait, BOUND)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        else:
            stream: Any = (
                client.call(Feed.Subscribe, Tick(), timeout=30)
                if method == "Subscribe"
                else client.call(Feed.Relay, ticks(), timeout=30)
            )
            await stream.read()
            stream.cancel()
            with pytest.raises(RpcError) as cancelled:
                await stream.read()
            assert cancelled.value.code is StatusCode.CANCELLED
        assert await asyncio.to_thread(feed.resources.released.wait, BOUND)
        assert feed.resources.held == 0


_VANISHING_CLIENT = """
import sys
from transport import Client
from tests.conformance.test_faults import Feed, Tick
with Client.connect(sys.argv[1]) as client:
    stream = client.call(Feed.Subscribe, Tick())
    next(stream)
    print("streaming", flush=True)
    for _ in stream:
        pass
"""


@pytest.mark.slow
def test_a_client_process_killed_mid_stream_releases_the_handler() -> None:
    feed = FeedServer()
    with serve(bind(Feed, feed)) as server:
        client = subprocess.Popen(
            [sys.executable, "-c", _VANISHING_CLIENT, server.address],
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
        try:
            assert client.stdout is not None
            assert client.stdout.readline().strip() == "streaming"
            assert feed.resources.held == 1
            client.kill()
            assert feed.resources.released.wait(BOUND), "the handler outlived its client"
        finally:
            client.kill()
            client.wait(timeout=10)
            if client.stdout is not None:
                client.stdout.close()


# --- graceful shutdown


def _five_responses() -> StreamingOutputCallRequest:
    return StreamingOutputCallRequest(
        response_parameters=[ResponseParameters(size=16, interval_us=60_000)] * 5
    )


class CountingServer(TestServiceServer):
    """Counts the EmptyCalls that reach a handler."""

    def __init__(self) -> None:
        self.empty_calls = 0

    def EmptyCall(self, request: Empty, context: Context) -> Empty:
        self.empty_calls += 1
        return Empty()


class AsyncCountingServer(AsyncTestServiceServer):
    def __init__(self) -> None:
        self.empty_calls = 0

    async def EmptyCall(self, request: Empty, context: AsyncContext) -> Empty:
        self.empty_calls += 1
        return Empty()


# A call that arrives once server.stop() has begun never reaches a handler, but
# gRPC core may end it CANCELLED instead of UNAVAILABLE if it raced the stop.
REFUSED_AFTER_STOP = {StatusCode.UNAVAILABLE, StatusCode.CANCELLED}


def test_graceful_shutdown_finishes_calls_in_flight_and_refuses_new_ones() -> None:
    health = Health()
    counting = CountingServer()
    with serve(bind(TestService, counting), health, interceptors=[health.interceptor()]) as server:
        client = server.client
        in_flight = [
            client.call(TestService.StreamingOutputCall, _five_responses()) for _ in range(4)
        ]
        too_long = client.call(
            TestService.StreamingOutputCall,
            StreamingOutputCallRequest(
                response_parameters=[ResponseParameters(size=1, interval_us=100_000)] * 100
            ),
        )
        first = [next(stream) for stream in in_flight] + [next(too_long)]
        assert len(first) == 5
        # Drain: not ready, and new calls refused UNAVAILABLE, on any channel.
        health.enter_graceful_shutdown()
        assert health.status() is ServingStatus.NOT_SERVING
        with pytest.raises(RpcError) as refused:
            client.call(TestService.EmptyCall, Empty(), timeout=5)
        assert refused.value.code is StatusCode.UNAVAILABLE
        with Client.connect(server.address, timeout=5) as late:
            with pytest.raises(RpcError) as refused_late:
                late.call(TestService.EmptyCall, Empty())
            assert refused_late.value.code is StatusCode.UNAVAILABLE
        # Stop: calls in flight finish within the grace period, every response delivered.
        started = time.monotonic()
        stopped = server.server.stop(grace=1.0)
        with Client.connect(server.address, timeout=5) as later:
            with pytest.raises(RpcError) as refused_later:
                later.call(TestService.EmptyCall, Empty())
            assert refused_later.value.code in REFUSED_AFTER_STOP
        for stream in in_flight:
            rest = list(stream)
            assert len(rest) == 4 and all(r.payload and len(r.payload.body) == 16 for r in rest)
        assert time.monotonic() - started < 1.0
        # A call that outlives the grace period is ended, UNAVAILABLE, when it runs out.
        with pytest.raises(RpcError) as cut:
            list(too_long)
        assert cut.value.code is StatusCode.UNAVAILABLE
        assert stopped.wait(BOUND)
    assert counting.empty_calls == 0


@pytest.mark.anyio
async def test_graceful_shutdown_of_the_asyncio_server() -> None:
    health = Health()
    counting = AsyncCountingServer()
    async with serve_async(
        bind(TestService, counting), health, interceptors=[health.async_interceptor()]
    ) as server:
        client = server.client
        in_flight = [
            client.call(TestService.StreamingOutputCall, _five_responses()) for _ in range(4)
        ]
        for stream in in_flight:
            await stream.read()
        health.enter_graceful_shutdown()
        with pytest.raises(RpcError) as refused:
            await client.call(TestService.EmptyCall, Empty())
        assert refused.value.code is StatusCode.UNAVAILABLE
        stopping = asyncio.ensure_future(server.server.stop(grace=2.0))
        for stream in in_flight:
            assert len([r async for r in stream]) == 4
        await asyncio.wait_for(stopping, BOUND)
        async with AsyncClient.connect(server.address, timeout=5) as late:
            with pytest.raises(RpcError) as refused_late:
                await late.call(TestService.EmptyCall, Empty())
            assert refused_late.value.code is StatusCode.UNAVAILABLE  # nothing listens now
    assert counting.empty_calls == 0


# --- the owner runtime: a client that goes away mid-Generate leaks no session


class EndlessSession:
    """Generates until stopped; counts the generators running and the closes."""

    def __init__(self, backend: EndlessBackend, info: ModelInfo) -> None:
        self.backend = backend
        self.info = info

    async def infer(self, inputs: Any) -> Any:
        return inputs

    async def generate(self, prompt: str, max_tokens: int) -> AsyncIterator[str]:
        self.backend.generating += 1
        try:
            n = 0
            while True:
                yield f"{prompt}{n}"
                n += 1
                await asyncio.sleep(0.005)
        finally:
            self.backend.generating -= 1

    async def close(self) -> None:
        self.backend.closed += 1


class EndlessBackend:
    def __init__(self) -> None:
        self.opened = self.closed = self.generating = 0

    async def describe(self, request: OpenSessionRequest) -> ModelInfo:
        return ModelInfo(type=request.type, can_generate=True)

    async def open_session(self, request: OpenSessionRequest) -> EndlessSession:
        self.opened += 1
        return EndlessSession(self, await self.describe(request))


@pytest.mark.anyio
@pytest.mark.parametrize("goes_away", ["cancels the stream", "closes its channel"])
async def test_a_client_gone_mid_generate_leaks_no_runtime_session(goes_away: str) -> None:
    backend = EndlessBackend()
    async with running(backend, instance_id="", idle_timeout=0.3) as serving:
        runtime = serving.server
        client = await dial_leader_async(serving.endpoint, "", timeout=30)
        session = await client.open_session(OpenSessionRequest(type="endless"))
        assert runtime.session_count == 1
        pieces = session.generate("t")
        assert await pieces.__anext__() == "t0"
        assert backend.generating == 1
        if goes_away == "cancels the stream":
            await pieces.aclose()
        else:
            await client.close()
        # The Generate handler stops, which lets go of the session ...
        await eventually_async(lambda: backend.generating == 0, "the generator outlived its client")
        # ... so the idle reaper closes it, exactly once: nothing leaks.
        await eventually_async(lambda: runtime.session_count == 0, "the session leaked")
        assert backend.closed == backend.opened == 1
        if goes_away == "cancels the stream":
            await client.close()
