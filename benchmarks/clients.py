"""The client side of each variant, run in the benchmark process.

Every driver answers the same four questions (one call's latency, calls per
second with many in flight, a stream's messages per second, an array's round
trip) against the server of its variant. Asyncio drivers share one event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import grpc
import grpc.aio
import numpy as np

from transport import AsyncClient, Client, JsonCodec
from transport.chunks import array_chunks, join_array
from transport.runtime.wire import InferRequest

from .servers import OPTIONS, RUNTIME_OWNER, JsonCodecForGrpclib, floor_tick
from .shapes import (
    ARRAY,
    ECHO,
    TICKS,
    Bench,
    Reading,
    Tensor,
    TickRequest,
    infer_request,
    protobuf_classes,
    protobuf_reading,
    reading,
    tensor,
)

T = TypeVar("T")

_REGISTERED: dict[str, Any] = {"_registered_method": True}
_LIMITS: dict[str, Any] = {"max_send_message_bytes": -1, "max_receive_message_bytes": -1}


async def _timed_calls(call: Callable[[], Awaitable[Any]], calls: int) -> list[float]:
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - start)
    return latencies


async def _concurrently(call: Callable[[], Awaitable[Any]], calls: int, in_flight: int) -> float:
    async def worker() -> None:
        for _ in range(calls // in_flight):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - start


def _timed(call: Callable[[], Any], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


class Driver:
    """One variant's client; subclasses answer the scenarios that apply to them."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.variant = variant
        self.address = f"127.0.0.1:{port}"
        self.port = port
        self.loop = loop

    def unary(self, calls: int) -> list[float]:
        """The latency of each of ``calls`` calls made one after another, in seconds."""
        raise NotImplementedError

    def concurrent(self, calls: int, in_flight: int) -> float:
        """Seconds to make ``calls`` calls from asyncio with ``in_flight`` at a time."""
        raise NotImplementedError

    def stream(self, count: int) -> float:
        """Seconds to receive a server stream of ``count`` messages."""
        raise NotImplementedError

    def array(self, nbytes: int, calls: int) -> float:
        """Seconds per round trip of a float32 array of ``nbytes`` bytes."""
        raise NotImplementedError

    def infer(self, calls: int) -> list[float]:
        """The latency of each of ``calls`` owner-runtime Infer calls on a small array."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the channels."""


class FloorDriver(Driver):
    """grpcio with identity serializers: bytes in, bytes out."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.channel = grpc.insecure_channel(self.address, options=OPTIONS)
        self.echo: Any = self.channel.unary_unary(ECHO, **_REGISTERED)
        self.ticks: Any = self.channel.unary_stream(TICKS, **_REGISTERED)
        self.payload = JsonCodec(Reading).encode(reading())
        self.tick_size = len(floor_tick())
        self.aio: grpc.aio.Channel | None = None
        # A handle of the owner runtime is 56 characters for owner "owner-1".
        request = JsonCodec(InferRequest).encode(infer_request("h" * 56))
        self.infer_payload = b"x" * len(request)

    def infer(self, calls: int) -> list[float]:
        echo, payload, latencies = self.echo, self.infer_payload, []
        for _ in range(calls):
            start = time.perf_counter()
            echo(payload)
            latencies.append(time.perf_counter() - start)
        return latencies

    def unary(self, calls: int) -> list[float]:
        echo, payload, latencies = self.echo, self.payload, []
        for _ in range(calls):
            start = time.perf_counter()
            echo(payload)
            latencies.append(time.perf_counter() - start)
        return latencies

    def concurrent(self, calls: int, in_flight: int) -> float:
        async def run() -> float:
            if self.aio is None:
                self.aio = grpc.aio.insecure_channel(self.address, options=OPTIONS)
            echo: Any = self.aio.unary_unary(ECHO, **_REGISTERED)
            payload = self.payload
            return await _concurrently(lambda: echo(payload), calls, in_flight)

        return self.loop.run_until_complete(run())

    def stream(self, count: int) -> float:
        start = time.perf_counter()
        received = sum(len(message) for message in self.ticks(str(count).encode()))
        assert received == count * self.tick_size
        return time.perf_counter() - start

    def array(self, nbytes: int, calls: int) -> float:
        echo: Any = self.channel.unary_unary(ARRAY, **_REGISTERED)
        payload = np.asarray(tensor(nbytes).array).tobytes()
        assert echo(payload) == payload
        return _timed(lambda: echo(payload), calls)

    def close(self) -> None:
        self.channel.close()
        if self.aio is not None:
            self.loop.run_until_complete(self.aio.close())


class ProtobufDriver(Driver):
    """grpcio with protobuf messages built from descriptors at run time."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.classes = protobuf_classes()
        self.channel = grpc.insecure_channel(self.address, options=OPTIONS)
        self.request = protobuf_reading(self.classes)
        self.echo = self._unary(self.channel, ECHO, "Reading")
        self.aio: grpc.aio.Channel | None = None

    def _unary(self, channel: Any, path: str, name: str) -> Any:
        kind = self.classes[name]
        return channel.unary_unary(
            path,
            request_serializer=kind.SerializeToString,
            response_deserializer=kind.FromString,
            **_REGISTERED,
        )

    def unary(self, calls: int) -> list[float]:
        echo, request, latencies = self.echo, self.request, []
        for _ in range(calls):
            start = time.perf_counter()
            echo(request)
            latencies.append(time.perf_counter() - start)
        return latencies

    def concurrent(self, calls: int, in_flight: int) -> float:
        async def run() -> float:
            if self.aio is None:
                self.aio = grpc.aio.insecure_channel(self.address, options=OPTIONS)
            echo, request = self._unary(self.aio, ECHO, "Reading"), self.request
            return await _concurrently(lambda: echo(request), calls, in_flight)

        return self.loop.run_until_complete(run())

    def stream(self, count: int) -> float:
        ticks = self.channel.unary_stream(
            TICKS,
            request_serializer=self.classes["TickRequest"].SerializeToString,
            response_deserializer=self.classes["Tick"].FromString,
            **_REGISTERED,
        )
        start = time.perf_counter()
        received = sum(1 for _ in ticks(self.classes["TickRequest"](count=count)))
        assert received == count
        return time.perf_counter() - start

    def array(self, nbytes: int, calls: int) -> float:
        echo, kind = self._unary(self.channel, ARRAY, "Tensor"), self.classes["Tensor"]
        source = tensor(nbytes).array

        def round_trip() -> np.ndarray[Any, Any]:
            request = kind(name="x", dtype=source.dtype.name, shape=source.shape)
            request.data = source.tobytes()
            reply = echo(request)
            return np.frombuffer(reply.data, dtype=reply.dtype).reshape(tuple(reply.shape))

        assert np.array_equal(round_trip(), source)
        return _timed(round_trip, calls)

    def close(self) -> None:
        self.channel.close()
        if self.aio is not None:
            self.loop.run_until_complete(self.aio.close())


class TransportDriver(Driver):
    """This library's sync client (and its asyncio client for many calls in flight)."""

    def __init__(
        self, variant: str, port: int, loop: asyncio.AbstractEventLoop, **options: Any
    ) -> None:
        super().__init__(variant, port, loop)
        self.client = Client.connect(self.address, **_LIMITS, **options)
        self.options = options
        self.request = reading()
        self.aio: AsyncClient | None = None

    def unary(self, calls: int) -> list[float]:
        call, echo, request, latencies = self.client.call, Bench.Echo, self.request, []
        for _ in range(calls):
            start = time.perf_counter()
            call(echo, request)
            latencies.append(time.perf_counter() - start)
        return latencies

    def concurrent(self, calls: int, in_flight: int) -> float:
        async def run() -> float:
            if self.aio is None:
                self.aio = AsyncClient.connect(self.address, **_LIMITS, **self.options)
            call, echo, request = self.aio.call, Bench.Echo, self.request
            return await _concurrently(lambda: call(echo, request), calls, in_flight)

        return self.loop.run_until_complete(run())

    def stream(self, count: int) -> float:
        start = time.perf_counter()
        received = sum(1 for _ in self.client.call(Bench.Ticks, TickRequest(count=count)))
        assert received == count
        return time.perf_counter() - start

    def array(self, nbytes: int, calls: int) -> float:
        request = tensor(nbytes)
        assert np.array_equal(self.client.call(Bench.Array, request).array, request.array)
        return _timed(lambda: self.client.call(Bench.Array, request), calls)

    def close(self) -> None:
        self.client.close()
        if self.aio is not None:
            self.loop.run_until_complete(self.aio.close())


class ChunkedDriver(TransportDriver):
    """This library's sync client streaming arrays in chunks under the default 4 MiB limit."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.client.close()
        self.client = Client.connect(self.address)  # the default message limits

    def array(self, nbytes: int, calls: int) -> float:
        source = tensor(nbytes).array

        def round_trip() -> np.ndarray[Any, Any]:
            return join_array(self.client.call(Bench.ArrayChunks, array_chunks(source)))

        assert np.array_equal(round_trip(), source)
        return _timed(round_trip, calls)


class AsyncTransportDriver(Driver):
    """This library's asyncio client against its asyncio server."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.client = self._run(self._connect())
        self.request = reading()

    async def _connect(self) -> AsyncClient:
        return AsyncClient.connect(self.address, **_LIMITS)

    def _run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def unary(self, calls: int) -> list[float]:
        call, echo, request = self.client.call, Bench.Echo, self.request
        return self._run(_timed_calls(lambda: call(echo, request), calls))

    def concurrent(self, calls: int, in_flight: int) -> float:
        call, echo, request = self.client.call, Bench.Echo, self.request
        return self._run(_concurrently(lambda: call(echo, request), calls, in_flight))

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


class RuntimeDriver(Driver):
    """The owner runtime's client, fenced on the owner or not, with one open session."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        from transport.runtime import OpenSessionRequest, dial_leader

        owner = RUNTIME_OWNER if variant == "transport-fenced" else ""
        self.client = dial_leader(self.address, owner, timeout=10)
        self.model = OpenSessionRequest(type="echo", path="bench")
        self.session: Any = None
        self.inputs = infer_request("").inputs

    def infer(self, calls: int) -> list[float]:
        if self.session is None:  # opened when first used: an idle session is closed
            self.session = self.client.open_session(self.model)
        infer, inputs, latencies = self.session.infer, self.inputs, []
        for _ in range(calls):
            start = time.perf_counter()
            infer(inputs)
            latencies.append(time.perf_counter() - start)
        return latencies

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        self.client.close()


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
        return self._run(_timed_calls(lambda: echo(request), calls))

    def concurrent(self, calls: int, in_flight: int) -> float:
        echo, request = self.echo, self.request
        return self._run(_concurrently(lambda: echo(request), calls, in_flight))

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


def driver(variant: str, port: int, loop: asyncio.AbstractEventLoop) -> Driver:
    """The client of ``variant`` connected to its server on ``port``."""
    if variant == "floor":
        return FloorDriver(variant, port, loop)
    if variant == "protobuf":
        return ProtobufDriver(variant, port, loop)
    if variant == "transport":
        return TransportDriver(variant, port, loop)
    if variant == "transport-json":
        return TransportDriver(variant, port, loop, attachments=False)
    if variant == "transport-chunked":
        return ChunkedDriver(variant, port, loop)
    if variant == "transport-asyncio":
        return AsyncTransportDriver(variant, port, loop)
    if variant == "grpclib-json":
        return GrpclibDriver(variant, port, loop)
    if variant in ("transport-fenced", "transport-unfenced"):
        return RuntimeDriver(variant, port, loop)
    raise ValueError(f"unknown variant {variant!r}")
