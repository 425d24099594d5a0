"""The protobuf wire's element bound on real servers and clients: RESOURCE_EXHAUSTED, quickly.

The Jina seed's attack (524,288 empty ``DocumentProto`` in 1 MiB, or its 2 KiB
gzip) ends RESOURCE_EXHAUSTED with the path, in bounded CPU and memory, and the
server keeps serving; a client reading such an answer refuses it the same way.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc
from collections.abc import Iterator
from typing import Annotated, Any, Protocol

import grpc
import grpc.aio
import pytest

from transport import (
    AsyncContext,
    Context,
    Empty,
    Message,
    Number,
    RpcError,
    Service,
    StatusCode,
    bind,
    rpc,
)
from transport.examples.jina import JinaRPC, JinaServer, RequestProto
from transport.testing import TestServer, serve, serve_async

MIB = 1 << 20
DOCS = 524_288


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def _empty_docs(count: int) -> bytes:
    """``index { docs {} docs {} ... }``: a RequestProto of ``count`` empty documents."""
    docs = b"\x0a\x00" * count
    return b"\x1a" + _varint(len(docs)) + docs


@pytest.fixture(scope="module")
def jina() -> Iterator[TestServer]:
    with serve(bind(JinaRPC, JinaServer()), wire="protobuf") as running:
        yield running


def _send(server: TestServer, data: bytes, **options: Any) -> grpc.RpcError:
    call: Any = server.client.channel.stream_stream("/JinaRPC/Call")
    with pytest.raises(grpc.RpcError) as failed:
        list(call(iter([data]), timeout=30, **options))
    return failed.value


def _still_serving(server: TestServer) -> None:
    control = RequestProto.ControlRequestProto
    status = RequestProto(control=control(command=control.Command.STATUS))
    replies = list(server.client.call(JinaRPC.Call, iter([status])))
    assert replies and replies[0].status is not None


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip])
def test_half_a_million_empty_documents_end_resource_exhausted_quickly(
    jina: TestServer, compression: grpc.Compression | None
) -> None:
    data = _empty_docs(DOCS)
    assert len(data) <= MIB + 8 and len(gzip.compress(data)) < 8192  # 1,000x leverage
    started = time.process_time()
    error = _send(jina, data, compression=compression)
    spent = time.process_time() - started
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "protobuf messages and map entries" in (error.details() or "")
    assert "`$.index.docs[" in (error.details() or "")
    # 49,152 documents read at most (~0.2 s); all 524,288 took 2.2 s and more before.
    assert spent < 1.5, f"{spent:.2f} s of CPU"
    _still_serving(jina)


def test_the_refusal_takes_memory_in_proportion_to_the_allowance(jina: TestServer) -> None:
    data = _empty_docs(DOCS)
    tracemalloc.start()
    try:
        error = _send(jina, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # 49,152 documents of ~500 bytes and the request itself; +267 MiB before.
    assert peak < 64 * MIB, f"{peak / MIB:.0f} MiB"
    _still_serving(jina)


class Count(Message):
    """How many empty messages to answer with."""

    n: Annotated[int, Number(1)] = 0


class Many(Message):
    """Many empty messages."""

    items: Annotated[list[Empty], Number(1)] = []


class Fanout(Service, Protocol, name="test.protobuf.Fanout"):
    """Answers (or receives) many empty messages."""

    @rpc
    def Answer(self, request: Count) -> Many: ...

    @rpc
    def Receive(self, request: Many) -> Count: ...


class FanoutServer:
    def Answer(self, request: Count, context: Context) -> Many:
        return Many(items=[Empty()] * request.n)

    def Receive(self, request: Many, context: Context) -> Count:
        return Count(n=len(request.items))


class AsyncFanoutServer:
    async def Answer(self, request: Count, context: AsyncContext) -> Many:
        return Many(items=[Empty()] * request.n)

    async def Receive(self, request: Many, context: AsyncContext) -> Count:
        return Count(n=len(request.items))


def test_a_client_refuses_an_answer_of_too_many_messages() -> None:
    with serve(bind(Fanout, FanoutServer()), wire="protobuf") as server:
        assert len(server.client.call(Fanout.Answer, Count(n=1000)).items) == 1000
        with pytest.raises(RpcError) as refused:
            server.client.call(Fanout.Answer, Count(n=DOCS))
        assert refused.value.code == StatusCode.RESOURCE_EXHAUSTED
        assert "protobuf messages and map entries" in refused.value.message
        assert server.client.call(Fanout.Receive, Many(items=[Empty()] * 10)).n == 10


@pytest.mark.anyio
async def test_the_asyncio_server_and_client_refuse_too_many_messages() -> None:
    async with serve_async(bind(Fanout, AsyncFanoutServer()), wire="protobuf") as server:
        receive: Any = server.client.channel.unary_unary("/test.protobuf.Fanout/Receive")
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await receive(b"\x0a\x00" * DOCS, timeout=30)
        assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "`$.items[" in (failed.value.details() or "")
        with pytest.raises(RpcError) as refused:
            await server.client.call(Fanout.Answer, Count(n=DOCS))
        assert refused.value.code == StatusCode.RESOURCE_EXHAUSTED
        assert (await server.client.call(Fanout.Receive, Many(items=[Empty()] * 10))).n == 10
