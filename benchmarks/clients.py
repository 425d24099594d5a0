"""The client side of each variant, run in the benchmark process.

Every driver answers the same four questions (one call's latency, calls per
second with many in flight, a stream's messages per second, an array's round
trip) against the server of its variant. Asyncio drivers share one event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import grpc.aio
import numpy as np

from transport import AsyncClient, Client, JsonCodec
from transport.encoding.chunks import array_chunks, join_array
from transport.runtime.wire import InferRequest

from .clients_asyncio import AsyncFloorDriver, AsyncTransportDriver, GrpclibDriver
from .driver import LIMITS, REGISTERED, Driver, concurrently, timed
from .limits import AsyncioTcpDriver, SocketDriver
from .servers import OPTIONS, RUNTIME_OWNER, floor_tick
from .shapes import (
    ARRAY,
    CHAT,
    COLLECT,
    ECHO,
    TICKS,
    TRICKLE,
    Bench,
    Reading,
    TickRequest,
    infer_request,
    protobuf_classes,
    protobuf_reading,
    reading,
    tensor,
    tick,
)


class FloorDriver(Driver):
    """grpcio with identity serializers: bytes in, bytes out."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.channel = grpc.insecure_channel(self.address, options=OPTIONS)
        self.echo: Any = self.channel.unary_unary(ECHO, **REGISTERED)
        self.ticks: Any = self.channel.unary_stream(TICKS, **REGISTERED)
        self.payload = JsonCodec(Reading).encode(reading())
        self.tick_size = len(floor_tick())
        self.aio: grpc.aio.Channel | None = None
        self.infer_payload = self.infer_bytes()

    @staticmethod
    def infer_bytes() -> bytes:
        """As many bytes as the JSON of the runtime's Infer request."""
        # A handle of the owner runtime is 56 characters for owner "owner-1".
        return b"x" * len(JsonCodec(InferRequest).encode(infer_request("h" * 56)))

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
            echo: Any = self.aio.unary_unary(ECHO, **REGISTERED)
            payload = self.payload
            return await concurrently(lambda: echo(payload), calls, in_flight)

        return self.loop.run_until_complete(run())

    def stream(self, count: int) -> float:
        start = time.perf_counter()
        received = sum(len(message) for message in self.ticks(str(count).encode()))
        assert received == count * self.tick_size
        return time.perf_counter() - start

    def client_stream(self, count: int) -> float:
        collect: Any = self.channel.stream_unary(COLLECT, **REGISTERED)
        payloads = [floor_tick()] * count
        start = time.perf_counter()
        assert collect(iter(payloads)) == str(count).encode()
        return time.perf_counter() - start

    def bidi(self, count: int) -> float:
        chat: Any = self.channel.stream_stream(CHAT, **REGISTERED)
        payloads = [floor_tick()] * count
        start = time.perf_counter()
        assert sum(1 for _ in chat(iter(payloads))) == count
        return time.perf_counter() - start

    def short_streams(self, length: int, calls: int) -> list[float]:
        ticks, request, latencies = self.ticks, str(length).encode(), []
        for _ in range(calls):
            start = time.perf_counter()
            for _ in ticks(request):
                pass
            latencies.append(time.perf_counter() - start)
        return latencies

    def trickle(self, count: int) -> list[float]:
        trickle: Any = self.channel.unary_stream(TRICKLE, **REGISTERED)
        return [time.monotonic() - float(sent) for sent in trickle(str(count).encode())]

    def scale(self, nbytes: int, calls: int, in_flight: int) -> float:
        async def run() -> float:
            if self.aio is None:
                self.aio = grpc.aio.insecure_channel(self.address, options=OPTIONS)
            echo: Any = self.aio.unary_unary(ARRAY, **REGISTERED)
            payload = np.asarray(tensor(nbytes).array).tobytes()
            return await concurrently(lambda: echo(payload), calls, in_flight)

        return self.loop.run_until_complete(run())

    def array(self, nbytes: int, calls: int) -> float:
        echo: Any = self.channel.unary_unary(ARRAY, **REGISTERED)
        payload = np.asarray(tensor(nbytes).array).tobytes()
        assert echo(payload) == payload
        return timed(lambda: echo(payload), calls)

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
            **REGISTERED,
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
            return await concurrently(lambda: echo(request), calls, in_flight)

        return self.loop.run_until_complete(run())

    def stream(self, count: int) -> float:
        ticks = self.channel.unary_stream(
            TICKS,
            request_serializer=self.classes["TickRequest"].SerializeToString,
            response_deserializer=self.classes["Tick"].FromString,
            **REGISTERED,
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
        return timed(round_trip, calls)

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
        self.client = Client.connect(self.address, **LIMITS, **options)
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
                self.aio = AsyncClient.connect(self.address, **LIMITS, **self.options)
            call, echo, request = self.aio.call, Bench.Echo, self.request
            return await concurrently(lambda: call(echo, request), calls, in_flight)

        return self.loop.run_until_complete(run())

    def stream(self, count: int) -> float:
        start = time.perf_counter()
        received = sum(1 for _ in self.client.call(Bench.Ticks, TickRequest(count=count)))
        assert received == count
        return time.perf_counter() - start

    def client_stream(self, count: int) -> float:
        ticks = [tick(sequence) for sequence in range(count)]
        start = time.perf_counter()
        assert self.client.call(Bench.Collect, iter(ticks)).count == count
        return time.perf_counter() - start

    def bidi(self, count: int) -> float:
        ticks = [tick(sequence) for sequence in range(count)]
        start = time.perf_counter()
        assert sum(1 for _ in self.client.call(Bench.Chat, iter(ticks))) == count
        return time.perf_counter() - start

    def short_streams(self, length: int, calls: int) -> list[float]:
        call, request, latencies = self.client.call, TickRequest(count=length), []
        for _ in range(calls):
            start = time.perf_counter()
            for _ in call(Bench.Ticks, request):
                pass
            latencies.append(time.perf_counter() - start)
        return latencies

    def trickle(self, count: int) -> list[float]:
        replies = self.client.call(Bench.Trickle, TickRequest(count=count))
        return [time.monotonic() - reply.value for reply in replies]

    def scale(self, nbytes: int, calls: int, in_flight: int) -> float:
        async def run() -> float:
            if self.aio is None:
                self.aio = AsyncClient.connect(self.address, **LIMITS, **self.options)
            call, request = self.aio.call, tensor(nbytes)
            return await concurrently(lambda: call(Bench.Array, request), calls, in_flight)

        return self.loop.run_until_complete(run())

    def array(self, nbytes: int, calls: int) -> float:
        request = tensor(nbytes)
        assert np.array_equal(self.client.call(Bench.Array, request).array, request.array)
        return timed(lambda: self.client.call(Bench.Array, request), calls)

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
        return timed(round_trip, calls)


class RuntimeDriver(Driver):
    """The owner runtime's client, fenced on the owner or not, with one open session."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        from transport.runtime import OpenSessionRequest, dial_leader

        owner = "" if variant == "transport-unfenced" else RUNTIME_OWNER
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
    if variant == "transport-protobuf":
        return TransportDriver(variant, port, loop, wire="protobuf")
    if variant == "transport-chunked":
        return ChunkedDriver(variant, port, loop)
    if variant == "transport-asyncio":
        return AsyncTransportDriver(variant, port, loop)
    if variant == "grpclib-json":
        return GrpclibDriver(variant, port, loop)
    if variant == "floor-asyncio":
        return AsyncFloorDriver(variant, port, loop)
    if variant == "socket":
        return SocketDriver(variant, port, loop)
    if variant == "asyncio-tcp":
        return AsyncioTcpDriver(variant, port, loop)
    if variant in ("transport-fenced", "transport-fenced-sync", "transport-unfenced"):
        return RuntimeDriver(variant, port, loop)
    raise ValueError(f"unknown variant {variant!r}")
