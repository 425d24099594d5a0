"""The asyncio-only clients: this library's asyncio end to end, and grpclib."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np

from transport import AsyncClient, JsonCodec

from .driver import LIMITS, Driver, concurrently, timed_calls
from .servers import JsonCodecForGrpclib
from .shapes import (
    ARRAY,
    CHAT,
    COLLECT,
    ECHO,
    TICKS,
    TRICKLE,
    Bench,
    Reading,
    Tensor,
    Tick,
    TickRequest,
    reading,
    tensor,
    tick,
)

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

    def client_stream(self, count: int) -> float:
        ticks = [tick(sequence) for sequence in range(count)]

        async def run() -> float:
            start = time.perf_counter()
            assert (await self.client.call(Bench.Collect, ticks)).count == count
            return time.perf_counter() - start

        return self._run(run())

    def bidi(self, count: int) -> float:
        ticks = [tick(sequence) for sequence in range(count)]

        async def run() -> float:
            start = time.perf_counter()
            received = 0
            async for _ in self.client.call(Bench.Chat, ticks):
                received += 1
            assert received == count
            return time.perf_counter() - start

        return self._run(run())

    def short_streams(self, length: int, calls: int) -> list[float]:
        async def run() -> list[float]:
            call, request, latencies = self.client.call, TickRequest(count=length), []
            for _ in range(calls):
                start = time.perf_counter()
                async for _ in call(Bench.Ticks, request):
                    pass
                latencies.append(time.perf_counter() - start)
            return latencies

        return self._run(run())

    def trickle(self, count: int) -> list[float]:
        async def run() -> list[float]:
            replies = self.client.call(Bench.Trickle, TickRequest(count=count))
            return [time.monotonic() - reply.value async for reply in replies]

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


class AsyncFloorDriver(Driver):
    """grpc.aio with identity serializers at both ends: the floor of the asyncio variants."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        import grpc.aio

        from .servers import OPTIONS, floor_tick

        async def connect() -> Any:
            return grpc.aio.insecure_channel(self.address, options=OPTIONS)

        self.channel = loop.run_until_complete(connect())
        registered: dict[str, Any] = {"_registered_method": True}
        self.echo = self.channel.unary_unary(ECHO, **registered)
        self.ticks = self.channel.unary_stream(TICKS, **registered)
        self.trickle_method = self.channel.unary_stream(TRICKLE, **registered)
        self.collect = self.channel.stream_unary(COLLECT, **registered)
        self.chat = self.channel.stream_stream(CHAT, **registered)
        self.payload = JsonCodec(Reading).encode(reading())
        self.tick = floor_tick()
        self.options = OPTIONS
        self.sync_channel: Any = None
        self.sync_echo: Any = None
        self.infer_payload = b""

    def _run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def unary(self, calls: int) -> list[float]:
        echo, payload = self.echo, self.payload
        return self._run(timed_calls(lambda: echo(payload), calls))

    def stream(self, count: int) -> float:
        async def run() -> float:
            start = time.perf_counter()
            received = 0
            async for _ in self.ticks(str(count).encode()):
                received += 1
            assert received == count
            return time.perf_counter() - start

        return self._run(run())

    def client_stream(self, count: int) -> float:
        async def run() -> float:
            start = time.perf_counter()
            assert await self.collect(iter([self.tick] * count)) == str(count).encode()
            return time.perf_counter() - start

        return self._run(run())

    def bidi(self, count: int) -> float:
        async def run() -> float:
            start = time.perf_counter()
            received = 0
            async for _ in self.chat(iter([self.tick] * count)):
                received += 1
            assert received == count
            return time.perf_counter() - start

        return self._run(run())

    def short_streams(self, length: int, calls: int) -> list[float]:
        async def run() -> list[float]:
            request, latencies = str(length).encode(), []
            for _ in range(calls):
                start = time.perf_counter()
                async for _ in self.ticks(request):
                    pass
                latencies.append(time.perf_counter() - start)
            return latencies

        return self._run(run())

    def trickle(self, count: int) -> list[float]:
        async def run() -> list[float]:
            replies = self.trickle_method(str(count).encode())
            return [time.monotonic() - float(sent) async for sent in replies]

        return self._run(run())

    def infer(self, calls: int) -> list[float]:
        """The runtime's Infer as raw bytes: a sync client, as the runtime's, on grpc.aio."""
        if self.sync_echo is None:
            import grpc

            from .clients import FloorDriver

            self.sync_channel = grpc.insecure_channel(self.address, options=self.options)
            self.sync_echo = self.sync_channel.unary_unary(ECHO, _registered_method=True)
            self.infer_payload = FloorDriver.infer_bytes()
        echo, payload, latencies = self.sync_echo, self.infer_payload, []
        for _ in range(calls):
            start = time.perf_counter()
            echo(payload)
            latencies.append(time.perf_counter() - start)
        return latencies

    def close(self) -> None:
        if self.sync_channel is not None:
            self.sync_channel.close()
        self._run(self.channel.close())


class GrpclibDriver(Driver):
    """grpclib (pure-Python HTTP/2) with the transport's JSON as its codec."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        from grpclib.client import (
            Channel,
            StreamStreamMethod,
            StreamUnaryMethod,
            UnaryStreamMethod,
            UnaryUnaryMethod,
        )

        self.channel = Channel("127.0.0.1", port, codec=JsonCodecForGrpclib())
        self.echo = UnaryUnaryMethod(self.channel, ECHO, Reading, Reading)
        self.ticks = UnaryStreamMethod(self.channel, TICKS, TickRequest, Tick)
        self.trickle_method = UnaryStreamMethod(self.channel, TRICKLE, TickRequest, Tick)
        self.collect = StreamUnaryMethod(self.channel, COLLECT, Tick, TickRequest)
        self.chat = StreamStreamMethod(self.channel, CHAT, Tick, Tick)
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

    def client_stream(self, count: int) -> float:
        ticks = [tick(sequence) for sequence in range(count)]

        async def run() -> float:
            start = time.perf_counter()
            async with self.collect.open() as stream:
                for message in ticks:
                    await stream.send_message(message)
                await stream.end()
                reply = await stream.recv_message()
                assert reply is not None and reply.count == count
            return time.perf_counter() - start

        return self._run(run())

    def bidi(self, count: int) -> float:
        ticks = [tick(sequence) for sequence in range(count)]

        async def run() -> float:
            start = time.perf_counter()
            received = 0
            async with self.chat.open() as stream:
                await stream.send_request()

                async def send() -> None:
                    for message in ticks:
                        await stream.send_message(message)
                    await stream.end()

                sending = asyncio.ensure_future(send())
                async for _ in stream:
                    received += 1
                await sending
            assert received == count
            return time.perf_counter() - start

        return self._run(run())

    def short_streams(self, length: int, calls: int) -> list[float]:
        async def run() -> list[float]:
            latencies = []
            for _ in range(calls):
                start = time.perf_counter()
                async with self.ticks.open() as stream:
                    await stream.send_message(TickRequest(count=length), end=True)
                    async for _ in stream:
                        pass
                latencies.append(time.perf_counter() - start)
            return latencies

        return self._run(run())

    def trickle(self, count: int) -> list[float]:
        async def run() -> list[float]:
            delays = []
            async with self.trickle_method.open() as stream:
                await stream.send_message(TickRequest(count=count), end=True)
                async for reply in stream:
                    delays.append(time.monotonic() - reply.value)
            return delays

        return self._run(run())

    def scale(self, nbytes: int, calls: int, in_flight: int) -> float:
        request, echo = tensor(nbytes), self.array_method
        return self._run(concurrently(lambda: echo(request), calls, in_flight))

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
