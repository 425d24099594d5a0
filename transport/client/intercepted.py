"""Response streams that client interceptors wrapped: their messages, the call's methods.

An interceptor that sees each response returns an iterator of its own; the
caller still gets a stream whose metadata, ``cancel()`` and ``done()`` are
the call's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from ..errors import RpcError
from ..metadata import MetadataTuple
from ..status import StatusCode
from .aio_streams import AsyncResponseStream
from .streams import ResponseStream

__all__ = ["AsyncInterceptedStream", "InterceptedStream"]

Res = TypeVar("Res")


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
