"""Send what is already queued of a stream as one gRPC message (see ``_batches``).

grpcio sends a stream by pulling the next message from an iterator and
blocking until its write completes. To batch only what is already queued, the
messages of a stream that outpaces its writes are produced on their own (a
thread for the sync stack, a task for asyncio) into a queue bounded by the
batch limit, and grpcio's side takes all that is queued, whatever it is, as
soon as it is ready for the next write: a fast producer fills batches while a
write is in flight. A stream slower than its writes stays inline, message by
message, as without batching. Order, errors (after the messages before
them) and back-pressure (the producer waits once a full batch is queued) are
those of the stream without batching.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any

from ..encoding.batches import take

__all__ = ["FAST_RUN", "AsyncWriter", "coalesced", "coalesced_async"]

#: Messages made in a row faster than they were sent before a stream is coalesced.
FAST_RUN = 4


class _Pump:
    """A thread pulling ``source`` into a queue that :meth:`batches` empties."""

    def __init__(self, source: Iterator[bytes], limit: int) -> None:
        self._source = source
        self._limit = limit
        self._queued: deque[bytes] = deque()
        self._nbytes = 0
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        self._reading = False  # the consumer waits for a message
        self._writing = False  # the producer waits for room
        self._finished = False
        self._stopped = False
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="transport-stream", daemon=True).start()

    def _run(self) -> None:
        source, queued, limit = self._source, self._queued, self._limit
        try:
            for data in source:
                with self._lock:
                    if self._stopped:
                        break
                    queued.append(data)
                    self._nbytes += len(data)
                    if self._reading:
                        self._ready.notify()
                    while self._nbytes >= limit and not self._stopped:
                        self._writing = True
                        self._space.wait()
                        self._writing = False
        except BaseException as exc:  # handed to the consumer, who raises it in order
            self._error = exc
        finally:
            with self._lock:
                self._finished = True
                self._ready.notify()
            if self._stopped:
                _close(source)

    def batches(self) -> Iterator[bytes]:
        """What is queued, as gRPC messages, until the source ends (then its error, if any)."""
        queued, limit = self._queued, self._limit
        while True:
            with self._lock:
                while not queued and not self._finished and not self._stopped:
                    self._reading = True
                    self._ready.wait()
                    self._reading = False
                if not queued:
                    if self._error is not None and not self._stopped:
                        raise self._error
                    return
                data, taken = take(queued, limit)
                self._nbytes -= taken
                if self._writing:
                    self._space.notify()
            yield data

    def stop(self) -> None:
        """Stop producing: the source is closed after its current message."""
        with self._lock:
            self._stopped = True
            self._ready.notify_all()
            self._space.notify_all()


def _close(source: Any) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):  # the call is over: nobody is left to tell
            close()


def coalesced(
    source: Iterator[bytes],
    limit: int,
    on_end: Callable[[Callable[[], None]], object] | None = None,
) -> Generator[bytes, None, None]:
    """The messages of ``source``, those already queued packed together up to ``limit`` bytes.

    Messages are pulled inline, one per write, until the source has made
    :data:`FAST_RUN` messages in a row faster than grpcio sent them: only then
    would messages queue up, so only then does a producer thread start. A
    short stream or a slow trickle never pays for a thread or a hand-off.
    ``on_end`` registers a callback run when the call ends (a cancel wakes the
    sender waiting for the next message).
    """
    clock = time.perf_counter
    fast = 0
    while fast < FAST_RUN:
        started = clock()
        try:
            data = next(source)
        except StopIteration:
            return
        made = clock()
        yield data
        fast = fast + 1 if made - started < clock() - made else 0
    pump = _Pump(source, limit)
    if on_end is not None:
        on_end(pump.stop)
    try:
        yield from pump.batches()
    finally:
        pump.stop()


class _AsyncPump:
    """A task pulling ``source`` into a queue that :meth:`batches` empties."""

    def __init__(self, source: AsyncIterator[bytes], limit: int) -> None:
        self._limit = limit
        self._queued: deque[bytes] = deque()
        self._nbytes = 0
        self._finished = False
        self._error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._task = self._loop.create_task(self._run(source))

    async def _run(self, source: AsyncIterator[bytes]) -> None:
        queued, limit = self._queued, self._limit
        try:
            async for data in source:
                queued.append(data)
                self._nbytes += len(data)
                _wake(self._ready)
                if self._nbytes >= limit:
                    self._space = self._loop.create_future()
                    await self._space
        except BaseException as exc:  # handed to the consumer, who raises it in order
            self._error = exc
        finally:
            self._finished = True
            _wake(self._ready)

    async def batches(self) -> AsyncIterator[bytes]:
        """What is queued, as gRPC messages, until the source ends (then its error, if any)."""
        queued, limit = self._queued, self._limit
        while True:
            if not queued:
                if self._finished:
                    if self._error is not None:
                        raise self._error
                    return
                self._ready = self._loop.create_future()
                await self._ready
                continue
            data, taken = take(queued, limit)
            self._nbytes -= taken
            _wake(self._space)
            yield data

    def stop(self) -> None:
        """Cancel the producing task (its source sees the cancel where it waits)."""
        self._task.cancel()


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def coalesced_async(source: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The asyncio twin of :func:`coalesced` (the producer is a task on the same loop)."""
    clock = time.perf_counter
    fast = 0
    while fast < FAST_RUN:
        started = clock()
        try:
            data = await source.__anext__()
        except StopAsyncIteration:
            return
        made = clock()
        yield data
        fast = fast + 1 if made - started < clock() - made else 0
    pump = _AsyncPump(source, limit)
    try:
        async for data in pump.batches():
            yield data
    finally:
        pump.stop()


class AsyncWriter:
    """The writes of an asyncio bidirectional call, those already queued sent together.

    Writes go inline, each awaited until grpcio took it, until the application
    has written :data:`FAST_RUN` times in a row faster than a write took; from
    then on a write queues its message (waiting only while a full batch is
    queued) and a task sends what is queued. A failed send is raised by the
    next write or by :meth:`drain`.
    """

    def __init__(self, send: Callable[[bytes], Awaitable[None]], limit: int) -> None:
        self._send = send
        self._limit = limit
        self._queued: deque[bytes] = deque()
        self._nbytes = 0
        self._fast = 0
        self._last = 0.0  # when the last inline write returned
        self._task: asyncio.Task[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._error: BaseException | None = None

    async def write(self, data: bytes) -> None:
        """Send ``data``, or queue it behind a send in flight."""
        if self._error is not None:
            raise self._error
        if self._fast < FAST_RUN:
            started = time.perf_counter()
            await self._send(data)
            done = time.perf_counter()
            self._fast = self._fast + 1 if started - self._last < done - started else 0
            self._last = done
            return
        self._queued.append(data)
        self._nbytes += len(data)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush())
        while self._nbytes >= self._limit and self._error is None:
            self._space = asyncio.get_running_loop().create_future()
            await self._space
        if self._error is not None:
            raise self._error

    async def _flush(self) -> None:
        try:
            while self._queued:
                data, taken = take(self._queued, self._limit)
                self._nbytes -= taken
                _wake(self._space)
                await self._send(data)
        except BaseException as exc:  # raised by the next write, or drain()
            self._error = exc
            _wake(self._space)
        finally:
            self._task = None

    async def drain(self) -> None:
        """Wait until every queued message is sent; raise what stopped a send."""
        while self._task is not None:
            await self._task
        if self._error is not None:
            raise self._error
