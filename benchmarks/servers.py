"""The server of each variant, run in its own process: ``python -m benchmarks.servers VARIANT``.

It prints its port on the first line of stdout and serves until its stdin
closes, so a benchmark that dies takes its servers with it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
from grpclib.encoding.base import CodecBase

from transport import AsyncContext, Context, JsonCodec, bind, grpc_options
from transport.encoding.chunks import Chunk, array_chunks, join_array, join_array_async

from . import limits
from .shapes import (
    ARRAY,
    CHAT,
    COLLECT,
    ECHO,
    SERVICE,
    TICKS,
    TRICKLE,
    TRICKLE_INTERVAL,
    Bench,
    Reading,
    Tensor,
    Tick,
    TickRequest,
    stamped,
    tick,
)
from .shapes import protobuf_classes as _protobuf_classes

# Every variant lifts the message limits: the ndarray scenario sends 64 MiB.
OPTIONS = grpc_options(max_send_message_bytes=-1, max_receive_message_bytes=-1)
WORKERS = 32
RUNTIME_OWNER = "owner-1"


class SyncBench:
    """The transport implementation on ``grpc.server``."""

    def Echo(self, request: Reading, context: Context) -> Reading:
        return request

    def Ticks(self, request: TickRequest, context: Context) -> Iterator[Tick]:
        for sequence in range(request.count):
            yield tick(sequence)

    def Array(self, request: Tensor, context: Context) -> Tensor:
        return request

    def ArrayChunks(self, requests: Iterator[Chunk], context: Context) -> Iterator[Chunk]:
        return array_chunks(join_array(requests))

    def Collect(self, requests: Iterator[Tick], context: Context) -> TickRequest:
        return TickRequest(count=sum(1 for _ in requests))

    def Chat(self, requests: Iterator[Tick], context: Context) -> Iterator[Tick]:
        return requests

    def Trickle(self, request: TickRequest, context: Context) -> Iterator[Tick]:
        for sequence in range(request.count):
            time.sleep(TRICKLE_INTERVAL)
            yield stamped(sequence)


class AsyncBench:
    """The transport implementation on ``grpc.aio.server``."""

    async def Echo(self, request: Reading, context: AsyncContext) -> Reading:
        return request

    async def Ticks(self, request: TickRequest, context: AsyncContext) -> AsyncIterator[Tick]:
        for sequence in range(request.count):
            yield tick(sequence)

    async def Array(self, request: Tensor, context: AsyncContext) -> Tensor:
        return request

    async def ArrayChunks(
        self, requests: AsyncIterator[Chunk], context: AsyncContext
    ) -> AsyncIterator[Chunk]:
        for chunk in array_chunks(await join_array_async(requests)):
            yield chunk

    async def Collect(self, requests: AsyncIterator[Tick], context: AsyncContext) -> TickRequest:
        count = 0
        async for _ in requests:
            count += 1
        return TickRequest(count=count)

    async def Chat(
        self, requests: AsyncIterator[Tick], context: AsyncContext
    ) -> AsyncIterator[Tick]:
        async for request in requests:
            yield request

    async def Trickle(self, request: TickRequest, context: AsyncContext) -> AsyncIterator[Tick]:
        for sequence in range(request.count):
            await asyncio.sleep(TRICKLE_INTERVAL)
            yield stamped(sequence)


def floor_tick() -> bytes:
    """The bytes the floor streams: as large as the transport's JSON of a tick."""
    return b"x" * len(JsonCodec(Tick).encode(tick(5_000)))


def _floor_handler() -> grpc.GenericRpcHandler:
    payload = floor_tick()

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        return request

    def ticks(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for _ in range(int(request)):
            yield payload

    def collect(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return str(sum(1 for _ in requests)).encode()

    def chat(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        return requests

    def trickle(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        for _ in range(int(request)):
            time.sleep(TRICKLE_INTERVAL)
            yield str(time.monotonic()).encode().ljust(len(payload))

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Ticks": grpc.unary_stream_rpc_method_handler(ticks),
            "Array": grpc.unary_unary_rpc_method_handler(echo),
            "Collect": grpc.stream_unary_rpc_method_handler(collect),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
            "Trickle": grpc.unary_stream_rpc_method_handler(trickle),
        },
    )


def _floor_handler_aio() -> grpc.GenericRpcHandler:
    """The floor on ``grpc.aio.server``: what the asyncio variants are compared with."""
    payload = floor_tick()

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    async def ticks(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for _ in range(int(request)):
            yield payload

    async def collect(requests: AsyncIterator[bytes], context: Any) -> bytes:
        count = 0
        async for _ in requests:
            count += 1
        return str(count).encode()

    async def chat(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    async def trickle(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for _ in range(int(request)):
            await asyncio.sleep(TRICKLE_INTERVAL)
            yield str(time.monotonic()).encode().ljust(len(payload))

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Ticks": grpc.unary_stream_rpc_method_handler(ticks),
            "Collect": grpc.stream_unary_rpc_method_handler(collect),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
            "Trickle": grpc.unary_stream_rpc_method_handler(trickle),
        },
    )


def _protobuf_handler() -> grpc.GenericRpcHandler:
    classes = _protobuf_classes()
    tick_class = classes["Tick"]

    def echo(request: Any, context: grpc.ServicerContext) -> Any:
        return request

    def ticks(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for sequence in range(request.count):
            yield tick_class(sequence=sequence, value=sequence * 0.5, label="tick")

    def handler(factory: Callable[..., Any], fn: Any, request: str, response: str) -> Any:
        return factory(
            fn,
            request_deserializer=classes[request].FromString,
            response_serializer=classes[response].SerializeToString,
        )

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": handler(grpc.unary_unary_rpc_method_handler, echo, "Reading", "Reading"),
            "Ticks": handler(grpc.unary_stream_rpc_method_handler, ticks, "TickRequest", "Tick"),
            "Array": handler(grpc.unary_unary_rpc_method_handler, echo, "Tensor", "Tensor"),
        },
    )


def _serve_sync(add: Callable[[grpc.Server], None]) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS), options=OPTIONS)
    add(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.buffer.read()
    server.stop(grace=None).wait(timeout=5)


async def _serve_aio(floor: bool = False) -> None:
    server = grpc.aio.server(options=OPTIONS)
    if floor:
        server.add_generic_rpc_handlers((_floor_handler_aio(),))
    else:
        bind(Bench, AsyncBench()).add_to(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    await server.stop(grace=None)


class SyncEchoSession:
    """The ``echo`` model with plain (sync) methods: the runtime runs them on worker threads."""

    def __init__(self, info: Any) -> None:
        self.info = info

    def infer(self, inputs: Any) -> Any:
        return inputs

    def generate(self, prompt: str, max_tokens: int) -> Iterator[str]:
        yield from prompt.split()[: max_tokens or None]

    def close(self) -> None:
        pass


class SyncEchoBackend:
    """``NoneBackend``'s ``echo`` model as a sync backend."""

    def __init__(self) -> None:
        from transport.runtime import NoneBackend

        self._backend = NoneBackend()

    def describe(self, request: Any) -> Any:
        return asyncio.run(self._backend.describe(request))

    def open_session(self, request: Any) -> SyncEchoSession:
        return SyncEchoSession(self.describe(request))


async def _serve_runtime(instance_id: str, sync: bool = False) -> None:
    from transport.runtime import NoneBackend, Server

    server = grpc.aio.server(options=OPTIONS)
    runtime = Server(SyncEchoBackend() if sync else NoneBackend(), instance_id, "none")
    runtime.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    await runtime.close()
    await server.stop(grace=None)


class JsonCodecForGrpclib(CodecBase):
    """A grpclib codec that speaks the transport's JSON (content type ``application/grpc+json``)."""

    __content_subtype__ = "json"

    def __init__(self) -> None:
        self._codecs: dict[type[Any], JsonCodec[Any]] = {}

    def _codec(self, message_type: type[Any]) -> JsonCodec[Any]:
        found = self._codecs.get(message_type)
        if found is None:
            found = self._codecs[message_type] = JsonCodec(message_type)
        return found

    def encode(self, message: Any, message_type: Any) -> bytes:
        return self._codec(message_type).encode(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return self._codec(message_type).decode(data)


class GrpclibBench:
    """The benchmark service on grpclib, mapped by hand (grpclib's ``__mapping__``)."""

    async def echo(self, stream: Any) -> None:
        await stream.send_message(await stream.recv_message())

    async def ticks(self, stream: Any) -> None:
        request = await stream.recv_message()
        for sequence in range(request.count):
            await stream.send_message(tick(sequence))

    async def collect(self, stream: Any) -> None:
        count = 0
        async for _ in stream:
            count += 1
        await stream.send_message(TickRequest(count=count))

    async def chat(self, stream: Any) -> None:
        async for request in stream:
            await stream.send_message(request)

    async def trickle(self, stream: Any) -> None:
        request = await stream.recv_message()
        for sequence in range(request.count):
            await asyncio.sleep(TRICKLE_INTERVAL)
            await stream.send_message(stamped(sequence))

    def __mapping__(self) -> dict[str, Any]:
        from grpclib.const import Cardinality, Handler

        return {
            ECHO: Handler(self.echo, Cardinality.UNARY_UNARY, Reading, Reading),
            TICKS: Handler(self.ticks, Cardinality.UNARY_STREAM, TickRequest, Tick),
            ARRAY: Handler(self.echo, Cardinality.UNARY_UNARY, Tensor, Tensor),
            COLLECT: Handler(self.collect, Cardinality.STREAM_UNARY, Tick, TickRequest),
            CHAT: Handler(self.chat, Cardinality.STREAM_STREAM, Tick, Tick),
            TRICKLE: Handler(self.trickle, Cardinality.UNARY_STREAM, TickRequest, Tick),
        }


async def _serve_grpclib() -> None:
    from grpclib.server import Server

    server = Server([GrpclibBench()], codec=JsonCodecForGrpclib())
    await server.start("127.0.0.1", 0)
    # grpclib does not expose the port it bound.
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    server.close()
    await server.wait_closed()


def main(variant: str) -> None:
    """Serve ``variant`` until stdin closes."""
    if variant == "floor":
        _serve_sync(lambda server: server.add_generic_rpc_handlers((_floor_handler(),)))
    elif variant == "protobuf":
        _serve_sync(lambda server: server.add_generic_rpc_handlers((_protobuf_handler(),)))
    elif variant == "transport":
        _serve_sync(bind(Bench, SyncBench()).add_to)
    elif variant == "transport-asyncio":
        asyncio.run(_serve_aio())
    elif variant == "floor-asyncio":
        asyncio.run(_serve_aio(floor=True))
    elif variant == "transport-fenced":
        asyncio.run(_serve_runtime(RUNTIME_OWNER))
    elif variant == "transport-fenced-sync":
        asyncio.run(_serve_runtime(RUNTIME_OWNER, sync=True))
    elif variant == "transport-unfenced":
        asyncio.run(_serve_runtime(""))
    elif variant == "grpclib-json":
        asyncio.run(_serve_grpclib())
    elif variant in limits.SERVERS:
        limits.SERVERS[variant]()
    else:
        raise SystemExit(f"unknown variant {variant!r}")


if __name__ == "__main__":
    main(sys.argv[1])
