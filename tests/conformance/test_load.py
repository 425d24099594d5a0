"""Load on one channel, and the concurrency limit that protects a server beyond it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from transport import (
    AsyncClient,
    AsyncContext,
    Context,
    Message,
    RpcError,
    Service,
    StatusCode,
    bind,
    rpc,
)
from transport.interop import AsyncTestServiceServer, TestService, TestServiceServer
from transport.interop.messages import (
    Payload,
    ResponseParameters,
    SimpleRequest,
    StreamingOutputCallRequest,
)
from transport.testing import serve, serve_async

UNARY_CALLS = 1000
STREAMS = 100
EXCHANGES = 5
# 1,000 calls at once on one connection run far past its 100 streams: without
# overload protection the client queues them rather than see REFUSED_STREAM.
BURSTS = [("grpc.http.overload_protection", 0)]


async def _unary_calls(client: AsyncClient) -> None:
    async def one(i: int) -> int:
        request = SimpleRequest(response_size=i % 97, payload=Payload(body=bytes(i % 13)))
        response = await client.call(TestService.UnaryCall, request, timeout=60)
        return len(response.payload.body) if response.payload is not None else 0

    sizes = await asyncio.gather(*(one(i) for i in range(UNARY_CALLS)))
    assert sizes == [i % 97 for i in range(UNARY_CALLS)]


async def _streams(client: AsyncClient) -> None:
    async def one(i: int) -> list[int]:
        stream = client.open(TestService.FullDuplexCall, timeout=60)
        sizes = []
        for k in range(EXCHANGES):
            size = i + k
            await stream.write(
                StreamingOutputCallRequest(response_parameters=[ResponseParameters(size=size)])
            )
            response = await stream.read()
            assert response is not None and response.payload is not None
            sizes.append(len(response.payload.body))
        await stream.done_writing()
        assert await stream.read() is None
        return sizes

    results = await asyncio.gather(*(one(i) for i in range(STREAMS)))
    assert results == [[i + k for k in range(EXCHANGES)] for i in range(STREAMS)]


@pytest.mark.slow
@pytest.mark.anyio
async def test_many_concurrent_calls_and_streams_on_one_channel_asyncio_server() -> None:
    async with serve_async(bind(TestService, AsyncTestServiceServer()), options=BURSTS) as server:
        await _unary_calls(server.client)
        await _streams(server.client)


@pytest.mark.slow
@pytest.mark.anyio
async def test_many_concurrent_calls_and_streams_on_one_channel_sync_server() -> None:
    # Each open stream holds a worker thread of the sync server for as long as it lasts.
    with serve(
        bind(TestService, TestServiceServer()), max_workers=STREAMS + 8, options=BURSTS
    ) as server:
        async with AsyncClient.connect(server.address) as client:
            await _unary_calls(client)
            await _streams(client)


# --- maximum concurrent RPCs: RESOURCE_EXHAUSTED beyond the limit

LIMIT = 4


class Ticket(Message):
    number: int = 0


class Gate(Service, Protocol, name="test.load.Gate"):
    @rpc
    def Pass(self, request: Ticket) -> Ticket: ...


class GateServer:
    """Holds every call at the gate until it opens."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()
        self.all_waiting = threading.Event()

    def Pass(self, request: Ticket, context: Context) -> Ticket:
        with self._lock:
            self.waiting += 1
            if self.waiting == LIMIT:
                self.all_waiting.set()
        self.open.wait(30)
        return request


class AsyncGateServer:
    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.waiting = 0
        self.all_waiting = asyncio.Event()

    async def Pass(self, request: Ticket, context: AsyncContext) -> Ticket:
        self.waiting += 1
        if self.waiting == LIMIT:
            self.all_waiting.set()
        await self.open.wait()
        return request


def _code_of(outcome: Any) -> StatusCode:
    return outcome.code if isinstance(outcome, RpcError) else StatusCode.OK


@pytest.mark.anyio
async def test_calls_beyond_maximum_concurrent_rpcs_are_resource_exhausted_sync_server() -> None:
    gate = GateServer()
    with serve(bind(Gate, gate), maximum_concurrent_rpcs=LIMIT) as server:
        async with AsyncClient.connect(server.address, timeout=30) as client:
            held = [
                asyncio.ensure_future(client.call(Gate.Pass, Ticket(number=i)))
                for i in range(LIMIT)
            ]
            assert await asyncio.to_thread(gate.all_waiting.wait, 10)
            with pytest.raises(RpcError) as refused:
                await client.call(Gate.Pass, Ticket(number=99))
            assert refused.value.code is StatusCode.RESOURCE_EXHAUSTED
            gate.open.set()
            assert [t.number for t in await asyncio.gather(*held)] == list(range(LIMIT))
            assert (await client.call(Gate.Pass, Ticket(number=5))).number == 5
    assert gate.waiting == LIMIT + 1


@pytest.mark.anyio
async def test_calls_beyond_maximum_concurrent_rpcs_are_resource_exhausted_asyncio_server(
    transport_serve_async: Callable[..., Any],
) -> None:
    gate = AsyncGateServer()
    server = await transport_serve_async(bind(Gate, gate), maximum_concurrent_rpcs=LIMIT)
    client: AsyncClient = server.client
    held = [asyncio.ensure_future(client.call(Gate.Pass, Ticket(number=i))) for i in range(LIMIT)]
    await asyncio.wait_for(gate.all_waiting.wait(), 10)
    extra = await asyncio.gather(
        *(client.call(Gate.Pass, Ticket(number=9)) for _ in range(3)), return_exceptions=True
    )
    assert [_code_of(outcome) for outcome in extra] == [StatusCode.RESOURCE_EXHAUSTED] * 3
    gate.open.set()
    assert [t.number for t in await asyncio.gather(*held)] == list(range(LIMIT))
    assert (await client.call(Gate.Pass, Ticket(number=7))).number == 7
