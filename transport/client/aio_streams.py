"""The asyncio client's streams: responses decoded as they arrive, a bidi stream written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio

from .. import _grpc_fixes
from .._status_map import client_errors, status_code, task_cancelling
from ..errors import RpcError
from ..metadata import MetadataTuple, as_metadata, user_metadata
from ..service import Method
from ..status import StatusCode
from .calls import StreamedResponses, check_request
from .coalescing import AsyncWriter

_grpc_fixes.apply()

__all__ = ["AsyncBidiStream", "AsyncResponseStream"]

Req = TypeVar("Req")
Res = TypeVar("Res")
T = TypeVar("T")
# A stream used as a context manager keeps its own type (BidiStream stays one).
Stream = TypeVar("Stream", bound="AsyncResponseStream[Any]")


class AsyncResponseStream(StreamedResponses[Res]):
    """The responses of a server-streaming or bidirectional call, decoded as they arrive.

    Iterate it with ``async for``; use it as an async context manager to cancel
    the call if you stop early.
    """

    # grpc.aio's iterator of the call, from the first read on.
    _iterator: AsyncIterator[bytes] | None = None
    # Set once the call is cancelled (by the caller, or by a cancel of the reader).
    _cancelled = False

    def __aiter__(self) -> AsyncIterator[Res]:
        return self

    async def __anext__(self) -> Res:
        if self._cancelled:
            raise _cancelled_locally()
        held = self._held()
        if held is not None:
            return self._decode(held)
        by_caller: list[bool] = []  # Python 3.10 cannot tell a cancel of the reader otherwise

        def cancel_by_caller() -> None:
            by_caller.append(True)
            self.cancel()

        if self._iterator is None:
            self._iterator = self._call.__aiter__()
            # The first read also waits for grpc.aio's task that starts the call.
            read: Awaitable[bytes] = _keeping_cancel(self._iterator.__anext__(), cancel_by_caller)
        else:
            read = self._iterator.__anext__()
        try:
            with client_errors(self._sending):
                try:
                    data = await read
                except grpc.RpcError as exc:
                    data = await self._after_refusal(exc, cancel_by_caller)
                self._again = None  # a response came: the call is under way
        except StopAsyncIteration:
            if self._on_end is not None:
                self._on_end(as_metadata(await self._call.trailing_metadata()))
            raise
        except asyncio.CancelledError:
            # grpc.aio ends a read with CancelledError when the call is cancelled;
            # that is this call's status, not a cancel of the reading task.
            if self._cancelled and not (by_caller or task_cancelling()):
                raise _cancelled_locally() from None
            self._cancelled = True  # a cancel of the reader cancels the call
            raise
        if self._on_initial is not None:
            self._on_initial(as_metadata(await self._call.initial_metadata()))
            self._on_initial = None
        if self._batches and not self._batches_confirmed:
            self._confirm_batches(as_metadata(await self._call.initial_metadata()))
        return self._message(data)

    async def _after_refusal(self, exc: grpc.RpcError, on_cancel: Callable[[], None]) -> bytes:
        """Start the call again while the server refuses its stream; its first message.

        Raises ``exc`` (or the last refusal) when the call is not to be sent again.
        """
        while True:
            delay = None if self._retry is None else self._retry.delay(exc)
            if self._again is None or self._retry is None or delay is None:
                raise exc
            await asyncio.sleep(delay)
            self._call = self._again(self._retry.timeout())
            self._iterator = self._call.__aiter__()
            try:
                data: bytes = await _keeping_cancel(self._iterator.__anext__(), on_cancel)
            except grpc.RpcError as again:
                exc = again
            else:
                return data

    async def read(self) -> Res | None:
        """The next response, or ``None`` when the server has finished."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return None

    async def initial_metadata(self) -> MetadataTuple:
        """The server's initial metadata (waits for it)."""
        return user_metadata(await self._call.initial_metadata())

    async def trailing_metadata(self) -> MetadataTuple:
        """The server's trailing metadata (waits for the call to end)."""
        return user_metadata(await self._call.trailing_metadata())

    def cancel(self) -> None:
        """Cancel the call; the server's handler is stopped and reads raise CANCELLED."""
        self._cancelled = True
        self._call.cancel()

    def done(self) -> bool:
        """Whether the call has ended."""
        return bool(self._call.done())

    async def __aenter__(self: Stream) -> Stream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._call.done():
            self.cancel()


def _cancelled_locally() -> RpcError:
    return RpcError(StatusCode.CANCELLED, "the call was cancelled by the client")


class AsyncBidiStream(AsyncResponseStream[Res], Generic[Req, Res]):
    """A bidirectional call whose requests are written one by one with :meth:`write`."""

    def __init__(
        self,
        method: Method[Req, Res],
        call: Any,
        batches: int = 0,
        *,
        frames: bool = False,
        encode: Callable[[Any], bytes] | None = None,
    ) -> None:
        super().__init__(call, method, batches, frames=frames)
        self._method = method
        self._encode = encode or method.request_codec.encode
        # Set once the server has said it reads batches of requests.
        self._writer: AsyncWriter | None = None

    def _coalesce(self, limit: int) -> None:
        """Batch what is queued of the requests, up to ``limit`` bytes (0: never)."""
        if limit and self._writer is None:
            self._writer = AsyncWriter(self._send, limit)

    async def write(self, request: Req) -> None:
        """Send ``request``.

        Once the server has said it reads batches and the application writes
        faster than the call sends, a write returns when its request is queued
        behind the one in flight (a full batch queued makes it wait).
        """
        check_request(self._method, request)
        if self._cancelled:
            raise _cancelled_locally()
        data = self._encode(request)
        if self._writer is not None:
            await self._writer.write(data)
        else:
            await self._send(data)

    async def _send(self, data: bytes) -> None:
        with client_errors():
            try:
                await self._call.write(data)
            except asyncio.InvalidStateError:
                # The call has ended: a failed call raises its status instead.
                code = await self._call.code()
                if status_code(code) is StatusCode.OK:
                    raise
                raise grpc.aio.AioRpcError(
                    code,
                    await self._call.initial_metadata(),
                    await self._call.trailing_metadata(),
                    await self._call.details(),
                ) from None

    async def done_writing(self) -> None:
        """Half-close: tell the server no more requests follow (after those queued)."""
        if self._writer is not None:
            await self._writer.drain()
        await self._call.done_writing()


async def _keeping_cancel(read: Awaitable[T], cancel: Callable[[], object]) -> T:
    """Await ``read`` in a task of its own so that a cancel of the caller stays its own.

    grpc.aio waits on a task of its own that starts a streaming call; a cancel
    landing there is swallowed and a new, bare CancelledError raised, which an
    anyio cancel scope does not recognise as its own. The caller waits on a
    future of ours instead, and its cancel cancels the call.
    """
    task = asyncio.ensure_future(read)
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_done(done: asyncio.Future[T]) -> None:
        if not done.cancelled():
            done.exception()  # retrieved here when the caller has gone
        if not finished.done():
            finished.set_result(None)

    task.add_done_callback(on_done)
    try:
        await finished
    except asyncio.CancelledError:
        cancel()
        task.cancel()
        raise
    return task.result()
