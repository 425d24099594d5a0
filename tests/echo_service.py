"""An echo service with one method of each call kind, served sync and asyncio by the core tests.

Every handler echoes the client's ``x-echo`` / ``x-echo-bin`` metadata back in
initial metadata (``x-initial``, ``x-initial-bin``) and trailing metadata
(``x-trailing``, ``x-trailing-bin``), and records what it saw. ``Chat`` echoes
each note and, once the client half-closes, sends a last note ``end`` with the
number of notes it received. A note whose
text is ``fail`` makes the handler raise ``RpcError`` with details; ``crash``
makes it raise an unexpected exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from transport import AsyncContext, Context, Message, RpcError, Service, StatusCode, rpc

SECRET = "secret-internal-detail"
FAIL_DETAILS = {"reason": "asked to fail", "fields": ["text"], "nested": {"n": 1, "ok": None}}


class Note(Message):
    """One message of the echo service."""

    text: str = ""
    count: int = 0


class Echo(Service, Protocol, name="transport.tests.Echo"):
    """One method of each kind."""

    @rpc
    def Say(self, request: Note) -> Note: ...

    @rpc
    def Repeat(self, request: Note) -> Iterator[Note]: ...

    @rpc
    def Collect(self, requests: Iterator[Note]) -> Note: ...

    @rpc
    def Chat(self, requests: Iterator[Note]) -> Iterator[Note]: ...


def _check(note: Note) -> Note:
    if note.text == "fail":
        raise RpcError(StatusCode.FAILED_PRECONDITION, "asked to fail", FAIL_DETAILS)
    if note.text == "crash":
        raise ValueError(SECRET)
    return note


#: The most notes one Repeat sends: a bound, as a real service has, so that a
#: fuzzed count (a plain int takes any integer) cannot stream until the deadline.
MAX_REPEAT = 10_000


def _repeats(request: Note) -> range:
    """The counts Repeat answers with; INVALID_ARGUMENT past :data:`MAX_REPEAT`."""
    _check(request)
    if request.count > MAX_REPEAT:
        raise RpcError(StatusCode.INVALID_ARGUMENT, f"count: at most {MAX_REPEAT}")
    return range(request.count)


def _replies(metadata: dict[str, str | bytes]) -> tuple[list[tuple[str, str | bytes]], ...]:
    initial: list[tuple[str, str | bytes]] = []
    trailing: list[tuple[str, str | bytes]] = []
    for suffix in ("", "-bin"):
        if f"x-echo{suffix}" in metadata:
            initial.append((f"x-initial{suffix}", metadata[f"x-echo{suffix}"]))
            trailing.append((f"x-trailing{suffix}", metadata[f"x-echo{suffix}"]))
    return initial, trailing


class EchoServer:
    """The synchronous implementation (``grpc.server``)."""

    def __init__(self) -> None:
        self.seen_metadata: list[dict[str, str | bytes]] = []

    def _start(self, context: Context) -> None:
        metadata = dict(context.invocation_metadata())
        self.seen_metadata.append(metadata)
        initial, trailing = _replies(metadata)
        if initial:
            context.send_initial_metadata(initial)
        context.set_trailing_metadata(trailing)

    def Say(self, request: Note, context: Context) -> Note:
        self._start(context)
        return _check(request)

    def Repeat(self, request: Note, context: Context) -> Iterator[Note]:
        self._start(context)
        for i in _repeats(request):
            yield Note(text=f"{request.text}{i}", count=i)

    def Collect(self, requests: Iterator[Note], context: Context) -> Note:
        self._start(context)
        texts = [_check(note).text for note in requests]
        return Note(text="".join(texts), count=len(texts))

    def Chat(self, requests: Iterator[Note], context: Context) -> Iterator[Note]:
        self._start(context)
        received = 0
        for note in requests:
            received += 1
            yield _check(note)
        yield Note(text="end", count=received)


class AsyncEchoServer:
    """The asyncio implementation (``grpc.aio.server``)."""

    def __init__(self) -> None:
        self.seen_metadata: list[dict[str, str | bytes]] = []

    async def _start(self, context: AsyncContext) -> None:
        metadata = dict(context.invocation_metadata())
        self.seen_metadata.append(metadata)
        initial, trailing = _replies(metadata)
        if initial:
            await context.send_initial_metadata(initial)
        context.set_trailing_metadata(trailing)

    async def Say(self, request: Note, context: AsyncContext) -> Note:
        await self._start(context)
        return _check(request)

    async def Repeat(self, request: Note, context: AsyncContext) -> AsyncIterator[Note]:
        await self._start(context)
        for i in _repeats(request):
            yield Note(text=f"{request.text}{i}", count=i)

    async def Collect(self, requests: AsyncIterator[Note], context: AsyncContext) -> Note:
        await self._start(context)
        texts = [_check(note).text async for note in requests]
        return Note(text="".join(texts), count=len(texts))

    async def Chat(
        self, requests: AsyncIterator[Note], context: AsyncContext
    ) -> AsyncIterator[Note]:
        await self._start(context)
        received = 0
        async for note in requests:
            received += 1
            yield _check(note)
        yield Note(text="end", count=received)
