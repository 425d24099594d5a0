"""Calls made inside a handler inherit its deadline and cancellation, across three hops.

A client calls A, which calls B, which calls C, each a real server on
127.0.0.1 whose handler calls the next with the library's client and no
timeout of its own; C waits for its call to end. Sync and asyncio servers
alternate, both ways round.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from tests.echo_service import Echo, Note
from tests.eventually import eventually_async
from transport import AsyncClient, AsyncContext, Client, Context, RpcError, StatusCode, bind
from transport.deadlines import caller, detached
from transport.testing import serve, serve_async

DEADLINE = 0.5
BOUND = 5.0  # how long C waits for its call to end, at most
SLACK = 1.0  # how much later than the first deadline a hop may end
# grpcio's time_remaining() may exceed the timeout by its clock's rounding.
ROUNDING = 0.02


@dataclass
class Seen:
    """What one hop saw: the time left of its call as it began, and how its own call ended."""

    remaining: list[float | None] = field(default_factory=list)
    outcome: list[str] = field(default_factory=list)
    ended: list[bool] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class SyncRelay:
    """Say: call the next hop's Say, with no timeout of its own."""

    def __init__(self, next_address: str, seen: Seen) -> None:
        self.client = Client.connect(next_address)
        self.seen = seen

    def Say(self, request: Note, context: Context) -> Note:
        self.seen.remaining.append(context.time_remaining())
        try:
            reply = self.client.call(Echo.Say, request)
        except RpcError as exc:
            self.seen.outcome.append(exc.code.name)
            raise
        finally:
            self.seen.done.set()
        self.seen.outcome.append("OK")
        return reply


class AsyncRelay:
    """Say: call the next hop's Say, with no timeout of its own."""

    def __init__(self, next_address: str, seen: Seen) -> None:
        self.client = AsyncClient.connect(next_address)
        self.seen = seen

    async def Say(self, request: Note, context: AsyncContext) -> Note:
        self.seen.remaining.append(context.time_remaining())
        try:
            reply = await self.client.call(Echo.Say, request)
        except RpcError as exc:
            self.seen.outcome.append(exc.code.name)
            raise
        except asyncio.CancelledError:  # this handler's own call ended first
            self.seen.outcome.append("cancelled")
            raise
        finally:
            self.seen.done.set()
        self.seen.outcome.append("OK")
        return reply


class SyncSink:
    """Say: wait for the call to end (or :data:`BOUND`)."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def Say(self, request: Note, context: Context) -> Note:
        self.seen.remaining.append(context.time_remaining())
        self.seen.started.set()
        self.seen.ended.append(context.wait(timeout=BOUND))
        self.seen.done.set()
        return request


class AsyncSink:
    """Say: wait for the call to end (its task is cancelled) or :data:`BOUND`."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def Say(self, request: Note, context: AsyncContext) -> Note:
        self.seen.remaining.append(context.time_remaining())
        self.seen.started.set()
        try:
            await asyncio.sleep(BOUND)
            self.seen.ended.append(False)
        except asyncio.CancelledError:
            self.seen.ended.append(True)
            raise
        finally:
            self.seen.done.set()
        return request


CHAINS = {
    "sync-async-sync": ("sync", "async", "sync"),
    "async-sync-async": ("async", "sync", "async"),
}


@asynccontextmanager
async def chain(kinds: tuple[str, str, str]) -> AsyncIterator[tuple[str, list[Seen]]]:
    """Serve C, then B calling C, then A calling B; yield A's address and what each saw."""
    seen = [Seen(), Seen(), Seen()]
    async with AsyncExitStack() as stack:
        address = ""
        for hop in (2, 1, 0):
            kind = kinds[hop]
            if hop == 2:
                impl: Any = SyncSink(seen[hop]) if kind == "sync" else AsyncSink(seen[hop])
            else:
                impl = (
                    SyncRelay(address, seen[hop])
                    if kind == "sync"
                    else AsyncRelay(address, seen[hop])
                )
                if kind == "sync":
                    stack.callback(impl.client.close)
                else:
                    stack.push_async_callback(impl.client.close)
            if kind == "sync":
                server: Any = stack.enter_context(serve(bind(Echo, impl)))
            else:
                server = await stack.enter_async_context(serve_async(bind(Echo, impl)))
            address = server.address
        yield address, seen


@pytest.mark.parametrize("kinds", CHAINS.values(), ids=CHAINS.keys())
async def test_every_hop_ends_by_the_first_callers_deadline(kinds: tuple[str, str, str]) -> None:
    async with chain(kinds) as (address, seen):
        client = AsyncClient.connect(address)
        started = time.monotonic()
        try:
            with pytest.raises(RpcError) as caught:
                await client.call(Echo.Say, Note(text="deep"), timeout=DEADLINE)
        finally:
            await client.close()
        assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
        for hop in seen:
            await eventually_async(hop.done.is_set, "each hop's handler ends", BOUND + SLACK)
        ended = time.monotonic() - started
    assert ended < DEADLINE + SLACK
    for hop in seen:
        [remaining] = hop.remaining
        assert remaining is not None and 0 < remaining <= DEADLINE + ROUNDING
    assert seen[2].ended == [True]  # C's call ended with the deadline, not after BOUND
    for kind, hop in zip(kinds[:2], seen[:2], strict=True):
        # A sync relay sees its call to the next hop end DEADLINE_EXCEEDED; an
        # asyncio relay may instead be cancelled as its own call's deadline passes.
        allowed = {"DEADLINE_EXCEEDED"} if kind == "sync" else {"DEADLINE_EXCEEDED", "cancelled"}
        assert set(hop.outcome) <= allowed and hop.outcome


@pytest.mark.parametrize("kinds", CHAINS.values(), ids=CHAINS.keys())
async def test_a_cancel_at_the_first_client_reaches_the_last_handler(
    kinds: tuple[str, str, str],
) -> None:
    async with chain(kinds) as (address, seen):
        client = AsyncClient.connect(address)
        try:
            async with anyio.create_task_group() as tasks:

                async def call() -> None:
                    await client.call(Echo.Say, Note(text="deep"))

                tasks.start_soon(call)
                await eventually_async(seen[2].started.is_set, "C is reached")
                tasks.cancel_scope.cancel()
        finally:
            await client.close()
        await eventually_async(seen[2].done.is_set, "C's handler ends", BOUND + SLACK)
    assert [hop.remaining for hop in seen] == [[None]] * 3  # no deadline anywhere
    assert seen[2].ended == [True]  # ended by the cancel, not after BOUND


def test_a_call_outside_a_handler_has_no_caller() -> None:
    assert caller() is None


class TimedRelay(SyncRelay):
    """Say: call the next hop with a timeout of its own, detached from this call or not."""

    def __init__(self, next_address: str, timeout: float, detach: bool) -> None:
        super().__init__(next_address, Seen())
        self.timeout = timeout
        self.detach = detach

    def Say(self, request: Note, context: Context) -> Note:
        if not self.detach:
            return self.client.call(Echo.Say, request, timeout=self.timeout)
        with detached():
            return self.client.call(Echo.Say, request, timeout=self.timeout)


@pytest.mark.parametrize(
    ("timeout", "detach", "low", "high"),
    [
        (DEADLINE / 5, False, 0, DEADLINE / 5),  # its own, shorter than the caller's
        (DEADLINE * 2, False, 0, DEADLINE),  # the caller's, shorter than its own
        (DEADLINE * 2, True, DEADLINE, DEADLINE * 2),  # detached: its own only
    ],
    ids=["own-shorter", "callers-shorter", "detached"],
)
def test_a_calls_deadline_is_the_earlier_of_its_own_and_its_callers(
    timeout: float, detach: bool, low: float, high: float
) -> None:
    seen = Seen()
    with (
        serve(bind(Echo, SyncSink(seen))) as sink,
        serve(bind(Echo, TimedRelay(sink.address, timeout, detach))) as relay,
        pytest.raises(RpcError) as caught,
    ):
        relay.client.call(Echo.Say, Note(), timeout=DEADLINE)
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    [remaining] = seen.remaining
    assert remaining is not None and low < remaining <= high + ROUNDING


class SyncStreamingRelay(SyncRelay):
    """Repeat: answer with what the next hop's Say answers, called from the stream."""

    def Repeat(self, request: Note, context: Context) -> Iterator[Note]:
        yield Note(text="first")
        yield self.client.call(Echo.Say, request)


class AsyncStreamingRelay(AsyncRelay):
    """Repeat: answer with what the next hop's Say answers, called from the stream."""

    async def Repeat(self, request: Note, context: AsyncContext) -> AsyncIterator[Note]:
        yield Note(text="first")
        yield await self.client.call(Echo.Say, request)


async def test_a_streaming_handlers_calls_inherit_its_deadline() -> None:
    sink_seen = Seen()
    with serve(bind(Echo, SyncSink(sink_seen))) as sink:
        sync_relay = SyncStreamingRelay(sink.address, Seen())
        async_relay = AsyncStreamingRelay(sink.address, Seen())
        async with serve_async(bind(Echo, async_relay)) as async_server:
            with serve(bind(Echo, sync_relay)) as sync_server:
                for address in (sync_server.address, async_server.address):
                    client = AsyncClient.connect(address)
                    try:
                        with pytest.raises(RpcError) as caught:
                            async for _ in client.call(Echo.Repeat, Note(), timeout=DEADLINE):
                                pass
                    finally:
                        await client.close()
                    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
            sync_relay.client.close()
            await async_relay.client.close()
    assert len(sink_seen.remaining) == 2
    for remaining in sink_seen.remaining:
        assert remaining is not None and remaining <= DEADLINE + ROUNDING
