"""A client's bound on its unary calls in flight, and its retry of refused streams.

A burst on one channel stays below the server's stream bound (so it is served,
not refused), and a stream the server refuses anyway (HTTP/2 REFUSED_STREAM:
no handler ran) is sent again within the call's timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import pytest

from transport import AsyncClient, Client, Message, RpcError, Service, StatusCode, bind, rpc
from transport.client.calls import RefusalRetry
from transport.client.slots import AsyncCallSlots, CallSlots
from transport.options import DEFAULT_MAX_CALLS_IN_FLIGHT, SERVER_PROTECTIONS
from transport.testing import serve, serve_async

from ..eventually import eventually, eventually_async
from ..refusing_server import Refuser, refusing_server


class Ticket(Message):
    """A request the server holds until the test lets it go."""

    n: int = 0


class Desk(Service, Protocol, name="transport.tests.Desk"):
    @rpc
    def Hold(self, request: Ticket) -> Ticket: ...

    @rpc
    def Tickets(self, request: Ticket) -> Iterator[Ticket]: ...


class HeldDesk:
    """Holds each call until ``release`` is set; counts the calls it holds at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.release = threading.Event()

    def Hold(self, request: Ticket) -> Ticket:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        self.release.wait(20)
        with self.lock:
            self.now -= 1
        return request

    def Tickets(self, request: Ticket) -> Iterator[Ticket]:
        yield from (Ticket(n=n) for n in range(request.n))


class AsyncHeldDesk:
    """:class:`HeldDesk` for the asyncio server."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.release = asyncio.Event()

    async def Hold(self, request: Ticket) -> Ticket:
        self.now += 1
        self.most = max(self.most, self.now)
        await asyncio.wait_for(self.release.wait(), 20)
        self.now -= 1
        return request

    async def Tickets(self, request: Ticket) -> AsyncIterator[Ticket]:
        for n in range(request.n):
            yield Ticket(n=n)


def test_the_default_bound_stays_below_the_servers_stream_bound() -> None:
    assert int(SERVER_PROTECTIONS["grpc.max_concurrent_streams"]) > DEFAULT_MAX_CALLS_IN_FLIGHT
    with Client.connect("127.0.0.1:1") as client:
        assert client.max_calls_in_flight == DEFAULT_MAX_CALLS_IN_FLIGHT


@pytest.mark.parametrize("bound", [0, -1, 2.5])
def test_a_bound_below_one_is_refused_before_a_channel_opens(bound: object) -> None:
    with pytest.raises(ValueError, match="max_calls_in_flight must be at least 1, or None"):
        Client.connect("127.0.0.1:1", max_calls_in_flight=bound)  # type: ignore[arg-type]


def test_sync_calls_beyond_the_bound_wait_for_a_slot_within_their_timeout() -> None:
    desk = HeldDesk()
    with (
        serve(bind(Desk, desk), max_workers=8) as server,
        server.connect(max_calls_in_flight=2) as client,
        ThreadPoolExecutor(5) as pool,
    ):
        held = [pool.submit(client.call, Desk.Hold, Ticket(n=n), timeout=30) for n in range(5)]
        eventually(lambda: desk.now == 2, "two calls held")
        with pytest.raises(RpcError) as waited:
            client.call(Desk.Hold, Ticket(), timeout=0.2)
        assert waited.value.code is StatusCode.DEADLINE_EXCEEDED
        assert "2 calls of this client were in flight (max_calls_in_flight)" in waited.value.message
        desk.release.set()
        assert [future.result(30).n for future in held] == [0, 1, 2, 3, 4]
    assert desk.most == 2


def test_without_a_bound_every_call_is_in_flight_at_once() -> None:
    desk = HeldDesk()
    with (
        serve(bind(Desk, desk), max_workers=8) as server,
        server.connect(max_calls_in_flight=None) as client,
        ThreadPoolExecutor(5) as pool,
    ):
        held = [pool.submit(client.call, Desk.Hold, Ticket(), timeout=30) for _ in range(5)]
        eventually(lambda: desk.now == 5, "five calls held")
        desk.release.set()
        assert all(future.result(30) == Ticket() for future in held)


@pytest.mark.anyio
async def test_asyncio_calls_wait_for_a_slot_and_a_cancelled_wait_gives_none_away() -> None:
    desk = AsyncHeldDesk()
    async with (
        serve_async(bind(Desk, desk)) as server,
        server.connect(max_calls_in_flight=2) as client,
    ):
        held = [asyncio.ensure_future(client.call(Desk.Hold, Ticket(n=n))) for n in range(4)]
        await eventually_async(lambda: desk.now == 2, "two calls held")
        with pytest.raises(RpcError) as waited:
            await client.call(Desk.Hold, Ticket(), timeout=0.2)
        assert waited.value.code is StatusCode.DEADLINE_EXCEEDED
        assert "(max_calls_in_flight)" in waited.value.message
        held[3].cancel()  # waiting for a slot: leaves without taking one
        with pytest.raises(asyncio.CancelledError):
            await held[3]
        desk.release.set()
        assert [ticket.n for ticket in await asyncio.gather(*held[:3])] == [0, 1, 2]
        assert desk.most == 2
        desk.release.clear()  # both slots are free again: two calls get held at once
        again = [asyncio.ensure_future(client.call(Desk.Hold, Ticket())) for _ in range(2)]
        await eventually_async(lambda: desk.now == 2, "two calls held again")
        desk.release.set()
        await asyncio.gather(*again)


@pytest.mark.anyio
async def test_a_wait_for_a_slot_with_no_time_left_ends_at_once() -> None:
    slots, async_slots = CallSlots(1), AsyncCallSlots(1)
    assert slots.acquire(None) is None and await async_slots.acquire(None) is None
    for timeout in (0, -1, 0.01):
        with pytest.raises(RpcError, match="max_calls_in_flight") as sync_waited:
            slots.acquire(timeout)
        with pytest.raises(RpcError, match="max_calls_in_flight") as async_waited:
            await async_slots.acquire(timeout)
        assert sync_waited.value.code is async_waited.value.code is StatusCode.DEADLINE_EXCEEDED
    slots.release()
    async_slots.release()
    assert slots.acquire(5) == 5 and await async_slots.acquire(5) == 5  # none given away


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_burst_of_2000_calls_on_one_channel_is_all_served() -> None:
    # All on the connection at once (a plain grpcio channel), part of such a
    # burst is refused, most on the sync server: python -m benchmarks.burst.
    desk, sync_desk = AsyncHeldDesk(), HeldDesk()
    desk.release.set()
    sync_desk.release.set()
    async with serve_async(bind(Desk, desk)) as server:
        assert await _burst(server.client, 2_000) == {"OK": 2_000}
        assert await _burst(server.client, 2_000, streams=True) == {"OK": 2_000}
    with serve(bind(Desk, sync_desk), max_workers=16) as sync_server:
        async with AsyncClient.connect(sync_server.address) as client:
            assert await _burst(client, 2_000) == {"OK": 2_000}
            assert await _burst(client, 2_000, streams=True) == {"OK": 2_000}


async def _burst(client: AsyncClient, count: int, *, streams: bool = False) -> Counter[str]:
    async def one(n: int) -> str:
        try:
            if streams:
                got = [t async for t in client.call(Desk.Tickets, Ticket(n=3), timeout=60)]
                assert got == [Ticket(n=0), Ticket(n=1), Ticket(n=2)]
            else:
                await client.call(Desk.Hold, Ticket(n=n), timeout=60)
        except RpcError as exc:
            return exc.code.name
        return "OK"

    return Counter(await asyncio.gather(*(one(n) for n in range(count))))


# --- refused streams, from a server that refuses on purpose


def test_a_refused_call_is_sent_again_until_it_is_served() -> None:
    with refusing_server(Refuser(refuse=5, message=b'{"n": 7}')) as refuser:
        with Client.connect(refuser.address, timeout=10) as client:
            assert client.call(Desk.Hold, Ticket()) == Ticket(n=7)
        # grpc-core sends a refused stream again once by itself; the client the rest.
        assert refuser.streams == 6


@pytest.mark.anyio
async def test_an_asyncio_refused_call_is_sent_again_until_it_is_served() -> None:
    with refusing_server(Refuser(refuse=5, message=b'{"n": 7}')) as refuser:
        async with AsyncClient.connect(refuser.address, timeout=10) as client:
            assert await client.call(Desk.Hold, Ticket()) == Ticket(n=7)
            ticket, _ = await client.with_call(Desk.Hold, Ticket())
            assert ticket == Ticket(n=7)
        assert refuser.streams == 7


def test_a_refused_server_stream_is_started_again_until_it_is_served() -> None:
    with refusing_server(Refuser(refuse=5, message=b'{"n": 7}')) as refuser:
        with Client.connect(refuser.address, timeout=10) as client:
            assert list(client.call(Desk.Tickets, Ticket())) == [Ticket(n=7)]
        assert refuser.streams == 6


@pytest.mark.anyio
async def test_an_asyncio_refused_server_stream_is_started_again_until_it_is_served() -> None:
    with refusing_server(Refuser(refuse=5, message=b'{"n": 7}')) as refuser:
        async with AsyncClient.connect(refuser.address, timeout=10) as client:
            assert [t async for t in client.call(Desk.Tickets, Ticket())] == [Ticket(n=7)]
        assert refuser.streams == 6


@pytest.mark.anyio
async def test_a_server_stream_that_keeps_being_refused_ends_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RefusalRetry, "WINDOW", 0.5)
    with refusing_server(Refuser(refuse=10**6)) as refuser:
        async with AsyncClient.connect(refuser.address) as client:
            with pytest.raises(RpcError) as refused:
                async for _ in client.call(Desk.Tickets, Ticket()):
                    pass
        assert refused.value.code is StatusCode.UNAVAILABLE
        assert 10 <= refuser.streams <= 50
        with Client.connect(refuser.address) as sync_client, pytest.raises(RpcError) as again:
            list(sync_client.call(Desk.Tickets, Ticket()))
        assert again.value.code is StatusCode.UNAVAILABLE


def test_a_server_that_keeps_refusing_ends_the_call_unavailable_within_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RefusalRetry, "WINDOW", 0.5)  # 10 s by default
    with refusing_server(Refuser(refuse=10**6)) as refuser:
        with Client.connect(refuser.address) as client:
            started = time.monotonic()
            with pytest.raises(RpcError) as refused:
                client.call(Desk.Hold, Ticket())
            spent = time.monotonic() - started
        assert refused.value.code is StatusCode.UNAVAILABLE
        assert "error code 7" in refused.value.message
        assert 0.4 < spent < 3
        # Two streams an attempt (grpc-core sends a refused one again once itself), the
        # attempts 1-2 ms apart at first, then up to 100 ms.
        assert 10 <= refuser.streams <= 50


def test_retries_of_refused_streams_stay_within_the_calls_timeout() -> None:
    with refusing_server(Refuser(refuse=10**6)) as refuser:
        with Client.connect(refuser.address) as client:
            started = time.monotonic()
            with pytest.raises(RpcError) as refused:
                client.call(Desk.Hold, Ticket(), timeout=0.05)
            assert time.monotonic() - started < 1.0
        assert refused.value.code in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED)


def test_an_unavailable_status_from_a_handler_is_not_sent_again() -> None:
    # A handler's UNAVAILABLE may come after it did its work: only refused streams are retried.
    with refusing_server(Refuser(refuse=0, status=14)) as refuser:
        with (
            Client.connect(refuser.address, timeout=10) as client,
            pytest.raises(RpcError) as failed,
        ):
            client.call(Desk.Hold, Ticket())
        assert failed.value.code is StatusCode.UNAVAILABLE
        assert refuser.streams == 1
