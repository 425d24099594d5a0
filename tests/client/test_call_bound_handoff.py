"""A slot handed from a finished call to a waiting one is not also given back.

``max_calls_in_flight=1`` means one call at the server at a time, also after
the slot has passed from call to call: a release that wakes a waiter must not
free a second slot for the next caller as well.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import pytest

from transport import AsyncClient, Client, Message, RpcError, Service, StatusCode, bind, rpc
from transport.client.slots import AsyncCallSlots
from transport.testing import serve, serve_async

from ..eventually import eventually, eventually_async


class Ticket(Message):
    """A request the server holds until the test lets its number go."""

    n: int = 0


class Gate(Service, Protocol, name="transport.tests.Gate"):
    @rpc
    def Hold(self, request: Ticket) -> Ticket: ...


class AsyncGate:
    """Holds call ``n`` until ``let_go(n)``; records which calls it holds at once."""

    def __init__(self) -> None:
        self.held: list[int] = []
        self.most = 0
        self._go: dict[int, asyncio.Event] = {}

    def _event(self, n: int) -> asyncio.Event:
        return self._go.setdefault(n, asyncio.Event())

    def let_go(self, n: int) -> None:
        self._event(n).set()

    async def Hold(self, request: Ticket) -> Ticket:
        self.held.append(request.n)
        self.most = max(self.most, len(self.held))
        try:
            await asyncio.wait_for(self._event(request.n).wait(), 20)
        finally:
            self.held.remove(request.n)
        return request


class SyncGate:
    """:class:`AsyncGate` for the sync server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: list[int] = []
        self.most = 0
        self._go: dict[int, threading.Event] = {}

    def _event(self, n: int) -> threading.Event:
        with self.lock:
            return self._go.setdefault(n, threading.Event())

    def let_go(self, n: int) -> None:
        self._event(n).set()

    def Hold(self, request: Ticket) -> Ticket:
        with self.lock:
            self.held.append(request.n)
            self.most = max(self.most, len(self.held))
        try:
            self._event(request.n).wait(20)
        finally:
            with self.lock:
                self.held.remove(request.n)
        return request


@pytest.mark.anyio
async def test_an_asyncio_bound_of_one_never_runs_two_calls_after_a_handoff() -> None:
    gate = AsyncGate()
    async with (
        serve_async(bind(Gate, gate)) as server,
        AsyncClient.connect(server.address, max_calls_in_flight=1, timeout=20) as client,
    ):
        first = asyncio.ensure_future(client.call(Gate.Hold, Ticket(n=1)))
        await eventually_async(lambda: gate.held == [1], "call 1 held")
        second = asyncio.ensure_future(client.call(Gate.Hold, Ticket(n=2)))  # waits for the slot
        gate.let_go(1)
        assert await first == Ticket(n=1)
        await eventually_async(lambda: gate.held == [2], "call 2 holding the handed slot")
        with pytest.raises(RpcError) as third:  # the slot is call 2's: none is free
            await client.call(Gate.Hold, Ticket(n=3), timeout=0.3)
        assert third.value.code is StatusCode.DEADLINE_EXCEEDED
        assert "(max_calls_in_flight)" in third.value.message
        gate.let_go(2)
        assert await second == Ticket(n=2)
        gate.let_go(4)
        assert await client.call(Gate.Hold, Ticket(n=4)) == Ticket(n=4)  # the slot came back
    assert gate.most == 1


def test_a_sync_bound_of_one_never_runs_two_calls_after_a_handoff() -> None:
    gate = SyncGate()
    with (
        serve(bind(Gate, gate), max_workers=4) as server,
        Client.connect(server.address, max_calls_in_flight=1, timeout=20) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(client.call, Gate.Hold, Ticket(n=1))
        eventually(lambda: gate.held == [1], "call 1 held", 10)
        second = pool.submit(client.call, Gate.Hold, Ticket(n=2))
        gate.let_go(1)
        assert first.result(20) == Ticket(n=1)
        eventually(lambda: gate.held == [2], "call 2 holding the handed slot", 10)
        with pytest.raises(RpcError) as third:
            client.call(Gate.Hold, Ticket(n=3), timeout=0.3)
        assert third.value.code is StatusCode.DEADLINE_EXCEEDED
        gate.let_go(2)
        assert second.result(20) == Ticket(n=2)
    assert gate.most == 1


@pytest.mark.anyio
async def test_the_slots_count_every_handoff_once() -> None:
    # Without a server: N calls through a bound of 1, each waiting for the one before.
    slots = AsyncCallSlots(1)
    holding: list[int] = []
    peak = 0

    async def call(n: int, done: asyncio.Event) -> None:
        nonlocal peak
        await slots.acquire(None)
        holding.append(n)
        peak = max(peak, len(holding))
        await done.wait()
        holding.remove(n)
        slots.release()

    dones = [asyncio.Event() for _ in range(5)]
    tasks = [asyncio.ensure_future(call(n, done)) for n, done in enumerate(dones)]
    for n, done in enumerate(dones):
        await eventually_async(lambda n=n: holding == [n], f"call {n} holding the slot")  # type: ignore[misc]
        late = asyncio.ensure_future(call(100 + n, asyncio.Event()))  # a newcomer must wait
        await asyncio.sleep(0)
        assert 100 + n not in holding
        late.cancel()
        done.set()
    await asyncio.gather(*tasks)
    assert peak == 1


# A call that waited WAITED s for a slot has TIMEOUT - WAITED s left at the server;
# the numbers tell a wrong remainder apart by 0.7 s at least, room for a loaded machine
# (TIMEOUT + WAITED: 2.7 s in all, TIMEOUT // WAITED: 2.7 s, TIMEOUT % WAITED: 1.3 s).
TIMEOUT, WAITED = 2.0, 0.7


@pytest.mark.anyio
async def test_an_asyncio_call_that_waited_for_a_slot_keeps_what_is_left_of_its_timeout() -> None:
    gate = AsyncGate()
    async with (
        serve_async(bind(Gate, gate)) as server,
        AsyncClient.connect(server.address, max_calls_in_flight=1, timeout=20) as client,
    ):
        first = asyncio.ensure_future(client.call(Gate.Hold, Ticket(n=1)))
        await eventually_async(lambda: gate.held == [1], "call 1 held")
        started = time.monotonic()
        waiting = asyncio.ensure_future(client.call(Gate.Hold, Ticket(n=2), timeout=TIMEOUT))
        await asyncio.sleep(WAITED)  # the time call 2 spends waiting for the slot
        gate.let_go(1)
        await first
        with pytest.raises(RpcError) as held:  # call 2 is held at the server until its deadline
            await waiting
        spent = time.monotonic() - started
        gate.let_go(2)
    assert held.value.code is StatusCode.DEADLINE_EXCEEDED
    assert TIMEOUT - 0.2 < spent < TIMEOUT + WAITED / 2


def test_a_sync_call_that_waited_for_a_slot_keeps_what_is_left_of_its_timeout() -> None:
    gate = SyncGate()
    with (
        serve(bind(Gate, gate), max_workers=4) as server,
        Client.connect(server.address, max_calls_in_flight=1, timeout=20) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(client.call, Gate.Hold, Ticket(n=1))
        eventually(lambda: gate.held == [1], "call 1 held", 10)
        started = time.monotonic()
        waiting = pool.submit(client.call, Gate.Hold, Ticket(n=2), timeout=TIMEOUT)
        time.sleep(WAITED)  # the time call 2 spends waiting for the slot
        gate.let_go(1)
        first.result(20)
        with pytest.raises(RpcError) as held:
            waiting.result(20)
        spent = time.monotonic() - started
        gate.let_go(2)
    assert held.value.code is StatusCode.DEADLINE_EXCEEDED
    assert TIMEOUT - 0.2 < spent < TIMEOUT + WAITED / 2
