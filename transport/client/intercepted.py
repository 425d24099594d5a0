"""Response streams that client interceptors wrapped: their messages, the call's methods.

An interceptor that sees each response returns an iterator of its own; the
caller still gets a stream whose metadata, ``cancel()`` and ``done()`` are
the call's. A bidirectional call opened with ``open()`` goes through the
interceptors as a call whose requests are an iterator fed by ``write()``.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from ..errors import RpcError
from ..metadata import MetadataTuple
from ..service import Method
from ..status import StatusCode
from .aio_streams import AsyncBidiStream, AsyncResponseStream
from .calls import check_request
from .streams import BidiStream, ResponseStream

__all__ = [
    "AsyncInterceptedBidiStream",
    "AsyncInterceptedStream",
    "InterceptedBidiStream",
    "InterceptedStream",
    "written",
    "written_async",
]

Req = TypeVar("Req")
Res = TypeVar("Res")
_CLOSE = object()


class InterceptedStream(ResponseStream[Res]):
    """The responses an interceptor returned, with the methods of the call it made.

    ``inner`` is ``None`` when no interceptor proceeded (it answered itself):
    the stream then has no call to cancel and no metadata.
    """

    def __init__(self, inner: ResponseStream[Res] | None, responses: Any) -> None:
        # Not ResponseStream.__init__: this stream reads no call of its own.
        self._inner = inner
        self._responses: Iterator[Res] = iter(responses)

    def __next__(self) -> Res:
        return next(self._responses)

    def initial_metadata(self) -> MetadataTuple:
        """The server's initial metadata (waits for it)."""
        return () if self._inner is None else self._inner.initial_metadata()

    def trailing_metadata(self) -> MetadataTuple:
        """The server's trailing metadata (waits for the call to end)."""
        return () if self._inner is None else self._inner.trailing_metadata()

    def cancel(self) -> None:
        """Cancel the call; the server's handler is stopped."""
        if self._inner is not None:
            self._inner.cancel()

    def done(self) -> bool:
        """Whether the call has ended."""
        return True if self._inner is None else self._inner.done()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._inner is not None:
            self._inner.__exit__(exc_type, exc, tb)


class AsyncInterceptedStream(AsyncResponseStream[Res]):
    """An asyncio response stream whose interceptors run at its first read.

    ``start()`` runs the (async) interceptors, which make the call; it returns
    the responses they hand back, and ``streams`` gets the call's own stream.
    """

    def __init__(
        self,
        start: Callable[[], Awaitable[Any]],
        streams: list[AsyncResponseStream[Res]],
    ) -> None:
        # Not AsyncResponseStream.__init__: the call starts on the first read.
        self._start = start
        self._streams = streams
        self._responses: AsyncIterator[Res] | None = None
        self._cancelled = False

    async def _started(self) -> AsyncIterator[Res]:
        if self._responses is None:
            if self._cancelled:
                raise RpcError(StatusCode.CANCELLED, "the call was cancelled by the client")
            self._responses = aiter(await self._start())
        return self._responses

    def _inner(self) -> AsyncResponseStream[Res] | None:
        return self._streams[-1] if self._streams else None

    async def __anext__(self) -> Res:
        return await anext(await self._started())

    async def initial_metadata(self) -> MetadataTuple:
        """The server's initial metadata (starts the call, waits for it)."""
        await self._started()
        inner = self._inner()
        return () if inner is None else await inner.initial_metadata()

    async def trailing_metadata(self) -> MetadataTuple:
        """The server's trailing metadata (waits for the call to end)."""
        await self._started()
        inner = self._inner()
        return () if inner is None else await inner.trailing_metadata()

    def cancel(self) -> None:
        """Cancel the call (before its first read: it is never made)."""
        self._cancelled = True
        inner = self._inner()
        if inner is not None:
            inner.cancel()

    def done(self) -> bool:
        """Whether the call has ended."""
        inner = self._inner()
        return self._cancelled if inner is None else inner.done()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        inner = self._inner()
        if inner is not None:
            await inner.__aexit__(exc_type, exc, tb)


def written(outbox: queue.SimpleQueue[Any]) -> Iterator[Any]:
    """The requests put in ``outbox``, until it is closed."""
    while (request := outbox.get()) is not _CLOSE:
        yield request


async def written_async(outbox: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    """The requests put in ``outbox``, until it is closed."""
    while (request := await outbox.get()) is not _CLOSE:
        yield request


class InterceptedBidiStream(BidiStream[Req, Res], Generic[Req, Res]):
    """``open()`` through interceptors: :meth:`write` feeds the iterator the interceptors see."""

    def __init__(
        self, method: Method[Req, Res], outbox: queue.SimpleQueue[Any], stream: ResponseStream[Res]
    ) -> None:
        # Not BidiStream.__init__: the call was made by call() with written(outbox).
        self._method = method
        self._outbox = outbox
        self._stream = stream
        self._writing = True

    def write(self, request: Req) -> None:
        """Queue ``request`` to be sent."""
        if not self._writing:
            raise ValueError("write() after done_writing()")
        check_request(self._method, request)
        self._outbox.put(request)

    send = write

    def done_writing(self) -> None:
        """Half-close: tell the server no more requests follow."""
        if self._writing:
            self._writing = False
            self._outbox.put(_CLOSE)

    def __next__(self) -> Res:
        return next(self._stream)

    def initial_metadata(self) -> MetadataTuple:
        """The server's initial metadata (waits for it)."""
        return self._stream.initial_metadata()

    def trailing_metadata(self) -> MetadataTuple:
        """The server's trailing metadata (waits for the call to end)."""
        return self._stream.trailing_metadata()

    def cancel(self) -> None:
        """Cancel the call and stop the request side."""
        self.done_writing()
        self._stream.cancel()

    def done(self) -> bool:
        """Whether the call has ended."""
        return self._stream.done()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.done_writing()
        self._stream.__exit__(exc_type, exc, tb)


class AsyncInterceptedBidiStream(AsyncBidiStream[Req, Res], Generic[Req, Res]):
    """``open()`` through async interceptors, which run at the first read."""

    def __init__(
        self, method: Method[Req, Res], outbox: asyncio.Queue[Any], stream: AsyncResponseStream[Res]
    ) -> None:
        # Not AsyncBidiStream.__init__: the call is made by call() with written_async(outbox).
        self._method = method
        self._outbox = outbox
        self._stream = stream
        self._writing = True

    async def write(self, request: Req) -> None:
        """Queue ``request`` to be sent."""
        if not self._writing:
            raise ValueError("write() after done_writing()")
        check_request(self._method, request)
        await self._outbox.put(request)

    async def done_writing(self) -> None:
        """Half-close: tell the server no more requests follow (after those queued)."""
        if self._writing:
            self._writing = False
            await self._outbox.put(_CLOSE)

    async def __anext__(self) -> Res:
        return await anext(self._stream)

    async def initial_metadata(self) -> MetadataTuple:
        """The server's initial metadata (starts the call, waits for it)."""
        return await self._stream.initial_metadata()

    async def trailing_metadata(self) -> MetadataTuple:
        """The server's trailing metadata (waits for the call to end)."""
        return await self._stream.trailing_metadata()

    def cancel(self) -> None:
        """Cancel the call."""
        self._writing = False
        self._stream.cancel()

    def done(self) -> bool:
        """Whether the call has ended."""
        return self._stream.done()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.done_writing()
        await self._stream.__aexit__(exc_type, exc, tb)
