"""The asyncio-only clients: this library's asyncio end to end, and grpclib."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np

from transport import AsyncClient

from .driver import LIMITS, Driver, concurrently, timed_calls
from .servers import JsonCodecForGrpclib
from .shapes import ARRAY, ECHO, TICKS, Bench, Reading, Tensor, TickRequest, reading, tensor

T = TypeVar("T")


class AsyncTransportDriver(Driver):
    """This library's asyncio client against its asyncio server."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.client = self._run(self._connect())
        self.request = reading()

    async def _connect(self) -> AsyncClient:
        return AsyncClient.connect(self.address, **LIMITS)

    def _run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def unary(self, calls: int) -> list[float]:
        call, echo, request = self.client.call, Bench.Echo, self.request
        return self._run(timed_calls(lambda: call(echo, request), calls))

    def concurrent(self, calls: int, in_flight: int) -> float:
        call, echo, request = self.client.call, Bench.Echo, self.request
        return self._run(concurrently(lambda: call(echo, request), calls, in_flight))

    def stream(self, count: int) -> float:
        async def run() -> float:
            start = time.perf_counter()
            received = 0
            async for _ in self.client.call(Bench.Ticks, TickRequest(count=count)):
                received += 1
            assert received == count
            return time.perf_counter() - start

        return self._run(run())

    def array(self, nbytes: int, calls: int) -> float:
        request = tensor(nbytes)

        async def run() -> float:
            reply = await self.client.call(Bench.Array, request)
            assert np.array_equal(reply.array, request.array)
            start = time.perf_counter()
            for _ in range(calls):
                await self.client.call(Bench.Array, request)
            return (time.perf_counter() - start) / calls

        return self._run(run())

    def close(self) -> None:
        self._run(self.client.close())


class GrpclibDriver(Driver):
    """grpclib (pure-Python HTTP/2) with the transport's JSON as its codec."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        from grpclib.client import Channel, UnaryStreamMethod, UnaryUnaryMethod

        self.channel = Channel("127.0.0.1", port, codec=JsonCodecForGrpclib())
        self.echo = UnaryUnaryMethod(self.channel, ECHO, Reading, Reading)
        self.ticks = UnaryStreamMethod(self.channel, TICKS, TickRequest, Any)
        self.array_method = UnaryUnaryMethod(self.channel, ARRAY, Tensor, Tensor)
        self.request = reading()

    def _run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def unary(self, calls: int) -> list[float]:
        echo, request = self.echo, self.request
        return self._run(timed_calls(lambda: echo(request), calls))

    def concurrent(self, calls: int, in_flight: int) -> float:
        echo, request = self.echo, self.request
        return self._run(concurrently(lambda: echo(request), calls, in_flight))

    def stream(self, count: int) -> float:
        async def run() -> float:
            start = time.perf_counter()
            received = 0
            async with self.ticks.open() as stream:
                await stream.send_message(TickRequest(count=count), end=True)
                async for _ in stream:
                    received += 1
            assert received == count
            return time.perf_counter() - start

        return self._run(run())

    def array(self, nbytes: int, calls: int) -> float:
        request = tensor(nbytes)

        async def run() -> float:
            reply = await self.array_method(request)
            assert np.array_equal(reply.array, request.array)
            start = time.perf_counter()
            for _ in range(calls):
                await self.array_method(request)
            return (time.perf_counter() - start) / calls

        return self._run(run())

    def close(self) -> None:
        self.channel.close()
