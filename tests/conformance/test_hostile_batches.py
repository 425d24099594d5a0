"""Hostile batch frames cost what reading them costs: refused by their header, both ways.

The attack of issue 22 is a batch frame at grpcio's 4 MiB limit declaring a
million empty messages. Anyone may send one (a server stream's request, a
client stream's message once batches are announced, a server's response).
Each is refused with a status naming what is wrong, with memory bounded
(traced peak over the call well under 32 MiB, where unpacking it whole cost
+185-230 MiB), and an asyncio server keeps answering Health meanwhile.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from typing import Any, Protocol

import grpc
import pytest

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
from transport.encoding import batches as _batches
from transport.health import Health
from transport.health.service import check
from transport.testing import serve, serve_async

#: Declared messages in the attack: the most 4-byte lengths under the 4 MiB limit.
ATTACK_COUNT = 1_048_320
#: A frame is refused with at most this much allocated at the peak of the call.
MEMORY_BOUND = 32 * 1024 * 1024
#: Health answers an asyncio server under attack within this.
HEALTH_BOUND = 0.5


def _empties(count: int = ATTACK_COUNT) -> bytes:
    """A well-formed batch frame of ``count`` empty messages (4,193,288 bytes for the attack)."""
    return _batches.MAGIC + struct.pack("<I", count) + bytes(4 * count)


def _objects() -> bytes:
    """A well-formed 4 MiB batch frame of ``{}``: each one decodes, as a valid message."""
    count = (len(_empties()) - 8) // 6
    return _batches.pack([b"{}"] * count)


class Note(Message):
    text: str = ""
    count: int = 0


#: The threads that decoded a Large (its __post_init__ runs as it is decoded).
MADE_ON: list[str] = []


class Large(Message):
    text: str = ""

    def __post_init__(self) -> None:
        MADE_ON.append(threading.current_thread().name)


class Notes(Service, Protocol, name="test.hostile.Batches"):
    @rpc
    def Repeat(self, request: Note) -> Iterator[Note]: ...

    @rpc
    def Measure(self, request: Large) -> Iterator[Note]: ...

    @rpc
    def Collect(self, requests: Iterator[Note]) -> Note: ...


class NotesServer:
    def Repeat(self, request: Note, context: Context) -> Iterator[Note]:
        yield request

    def Collect(self, requests: Iterator[Note], context: Context) -> Note:
        return Note(count=sum(1 for _ in requests))

    def Measure(self, request: Large, context: Context) -> Iterator[Note]:
        yield Note(count=len(request.text))


class AsyncNotesServer:
    async def Repeat(self, request: Note, context: AsyncContext) -> AsyncIterator[Note]:
        yield request

    async def Collect(self, requests: AsyncIterator[Note], context: AsyncContext) -> Note:
        return Note(count=len([r async for r in requests]))

    async def Measure(self, request: Large, context: AsyncContext) -> AsyncIterator[Note]:
        yield Note(count=len(request.text))


def _call(address: str, method: str, data: bytes, metadata: Any = None) -> grpc.RpcError:
    """Send ``data`` raw to ``method`` (one request, or one message of a client stream)."""
    path = f"/test.hostile.Batches/{method}"
    with grpc.insecure_channel(address) as channel:
        try:
            if method == "Repeat":
                repeat: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(path)
                list(repeat(data, timeout=30, metadata=metadata))
            else:
                collect: grpc.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(path)
                collect(iter([data]), timeout=30, metadata=metadata)
        except grpc.RpcError as exc:
            return exc
    raise AssertionError(f"{method} accepted the hostile frame")


class Traced:
    """The peak of traced allocations between entering and leaving (all threads)."""

    def __enter__(self) -> Traced:
        tracemalloc.start()
        self.base = tracemalloc.get_traced_memory()[0]
        self.peak = 0
        return self

    def __exit__(self, *exc: object) -> None:
        self.peak = tracemalloc.get_traced_memory()[1] - self.base
        tracemalloc.stop()


REFUSED = {
    # A server stream's request that says its client reads batches is a batch of one.
    "Repeat": (grpc.StatusCode.INVALID_ARGUMENT, f"of {ATTACK_COUNT} messages where one"),
    # A client stream after the announcement reads batches of what the server announced.
    "Collect": (grpc.StatusCode.RESOURCE_EXHAUSTED, "is over the 65536 bytes this end announced"),
}
ANNOUNCED = ((_batches.KEY, "65536"),)


@pytest.mark.parametrize("method", list(REFUSED))
def test_a_hostile_frame_is_refused_by_a_sync_server_with_memory_bounded(method: str) -> None:
    frame = _empties() if method == "Repeat" else _objects()
    with serve(bind(Notes, NotesServer())) as server:
        with Traced() as traced:
            failed = _call(server.address, method, frame, ANNOUNCED)
        code, text = REFUSED[method]
        assert (failed.code(), text in (failed.details() or "")) == (code, True), failed
        assert traced.peak < MEMORY_BOUND, f"{traced.peak / 2**20:.0f} MiB"
        assert list(server.client.call(Notes.Repeat, Note(text="next"))) == [Note(text="next")]


@pytest.mark.anyio
@pytest.mark.parametrize("method", list(REFUSED))
async def test_a_hostile_frame_is_refused_by_an_asyncio_server_with_memory_bounded(
    method: str,
) -> None:
    frame = _empties() if method == "Repeat" else _objects()
    async with serve_async(bind(Notes, AsyncNotesServer())) as server:
        with Traced() as traced:
            failed = await asyncio.to_thread(_call, server.address, method, frame, ANNOUNCED)
        code, text = REFUSED[method]
        assert (failed.code(), text in (failed.details() or "")) == (code, True), failed
        assert traced.peak < MEMORY_BOUND, f"{traced.peak / 2**20:.0f} MiB"
        replies = [note async for note in server.client.call(Notes.Repeat, Note(text="next"))]
        assert replies == [Note(text="next")]


@pytest.mark.anyio
async def test_an_asyncio_server_answers_health_during_the_attack() -> None:
    health = Health()
    async with serve_async(bind(Notes, AsyncNotesServer()), health) as server:
        frame, outcomes, slowest, failures = _empties(), [], 0.0, []
        attacked = threading.Event()

        def attack() -> None:
            for _ in range(3):
                outcomes.append(_call(server.address, "Repeat", frame).code())

        def probe() -> None:
            nonlocal slowest
            with grpc.insecure_channel(server.address) as channel:
                check(channel, timeout=10)  # connected before the clock starts
                while not attacked.is_set():
                    started = time.monotonic()
                    try:
                        check(channel, timeout=HEALTH_BOUND * 4)
                    except RpcError as exc:
                        failures.append(exc)
                    slowest = max(slowest, time.monotonic() - started)
                    attacked.wait(0.01)

        async def attacks() -> None:
            await asyncio.gather(*(asyncio.to_thread(attack) for _ in range(2)))
            attacked.set()

        await asyncio.gather(asyncio.to_thread(probe), attacks())
        assert outcomes == [grpc.StatusCode.INVALID_ARGUMENT] * 6
        assert failures == []
        assert slowest < HEALTH_BOUND, f"Health took {slowest:.2f} s during the attack"


@pytest.mark.anyio
async def test_an_asyncio_server_decodes_a_large_server_stream_request_off_the_loop() -> None:
    """As a unary request: plain (with the announcement), then as a batch of one."""
    async with serve_async(bind(Notes, AsyncNotesServer())) as server:
        loop_thread = threading.current_thread().name
        # The first call announces batches in its metadata; once the server has
        # announced back, the client sends its request as a batch of one.
        for size in (100_000, 100, 100_000):
            MADE_ON.clear()
            replies = [n async for n in server.client.call(Notes.Measure, Large(text="x" * size))]
            assert replies == [Note(count=size)]
            decoded_on = MADE_ON[-1]  # the first is the client's, making the request
            if size < 65536:
                assert decoded_on == loop_thread  # a small one costs less than a hand-off
            else:
                assert decoded_on.startswith("transport-codec"), decoded_on


class HostileServer:
    """A plain grpcio server that announces batches and answers with ``frame``."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame

    def repeat(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        context.send_initial_metadata((_batches.announcement(_batches.CEILING),))
        yield self.frame

    def start(self) -> tuple[grpc.Server, str]:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_stream_rpc_method_handler(
            self.repeat
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.hostile.Batches", {"Repeat": handler}),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        return server, f"127.0.0.1:{port}"


#: Both over the 64 KiB a client announces it reads (a count a frame cannot
#: hold is INVALID_ARGUMENT: tests/client/test_coalescing.py).
CLIENT_REFUSED: dict[str, Callable[[], bytes]] = {
    "empty messages": _empties,
    "valid messages": _objects,
}


@pytest.mark.parametrize("case", list(CLIENT_REFUSED))
def test_a_client_refuses_a_hostile_frame_from_a_server(case: str) -> None:
    server, address = HostileServer(CLIENT_REFUSED[case]()).start()
    try:
        with (
            Client.connect(address) as client,
            Traced() as traced,
            pytest.raises(RpcError) as failed,
        ):
            list(client.call(Notes.Repeat, Note(), timeout=30))
        assert failed.value.code is StatusCode.RESOURCE_EXHAUSTED, failed.value
        assert "is over the 65536 bytes this end announced" in failed.value.message
        assert traced.peak < MEMORY_BOUND, f"{traced.peak / 2**20:.0f} MiB"
    finally:
        server.stop(None)


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(CLIENT_REFUSED))
async def test_an_asyncio_client_refuses_a_hostile_frame_from_a_server(case: str) -> None:
    server, address = HostileServer(CLIENT_REFUSED[case]()).start()
    try:
        async with AsyncClient.connect(address) as client:
            with Traced() as traced, pytest.raises(RpcError) as failed:
                async for _ in client.call(Notes.Repeat, Note(), timeout=30):
                    pass
        assert failed.value.code is StatusCode.RESOURCE_EXHAUSTED, failed.value
        assert "is over the 65536 bytes this end announced" in failed.value.message
        assert traced.peak < MEMORY_BOUND, f"{traced.peak / 2**20:.0f} MiB"
    finally:
        server.stop(None)
