"""The asyncio client: typed calls of declared methods over a ``grpc.aio.Channel``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

import grpc
import grpc.aio

from . import _attachments, _grpc_fixes, _status_map
from ._calls import (
    CallInfo,
    MetadataTuple,
    RequestStream,
    as_metadata,
    check_request,
    decode_response,
    multicallable_kwargs,
    user_metadata,
)
from ._client_core import ClientCore
from .context import Metadata
from .errors import RpcError
from .service import Cardinality, Method, StreamStream, StreamUnary, UnaryStream, UnaryUnary
from .status import StatusCode

_grpc_fixes.apply()

__all__ = ["AsyncBidiStream", "AsyncClient", "AsyncResponseStream"]

Req = TypeVar("Req")
Res = TypeVar("Res")
T = TypeVar("T")
# A stream used as a context manager keeps its own type (BidiStream stays one).
Stream = TypeVar("Stream", bound="AsyncResponseStream[Any]")


class AsyncResponseStream(Generic[Res]):
    """The responses of a server-streaming or bidirectional call, decoded as they arrive.

    Iterate it with ``async for``; use it as an async context manager to cancel
    the call if you stop early.
    """

    # Told the trailing metadata when the stream ends (the client learns frames there).
    _on_end: Callable[[MetadataTuple], None] | None = None
    # The client's own stream of requests, whose failure ends the call.
    _sending: RequestStream | None = None

    def __init__(self, call: Any, method: Method[Any, Res], *, frames: bool = False) -> None:
        self._call = call
        self._method = method
        self._frames = frames
        self._iterator: AsyncIterator[bytes] | None = None
        self._cancelled = False

    def __aiter__(self) -> AsyncIterator[Res]:
        return self

    async def __anext__(self) -> Res:
        if self._cancelled:
            raise _cancelled_locally()
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
            data = await read
        except grpc.RpcError as exc:
            if self._sending is not None:
                self._sending.raise_error()
            raise _status_map.error_of(exc) from None
        except StopAsyncIteration:
            if self._on_end is not None:
                self._on_end(as_metadata(await self._call.trailing_metadata()))
            raise
        except asyncio.CancelledError:
            # grpc.aio ends a read with CancelledError when the call is cancelled;
            # that is this call's status, not a cancel of the reading task.
            _raise_request_error(self._sending)
            if self._cancelled and not (by_caller or _task_cancelling()):
                raise _cancelled_locally() from None
            self._cancelled = True  # a cancel of the reader cancels the call
            raise
        try:
            return decode_response(self._method, data, frames=self._frames)  # type: ignore[no-any-return]
        except RpcError:
            self._call.cancel()
            raise

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


def _task_cancelling() -> bool:
    """Whether the current task is being cancelled (Python >= 3.11 can tell)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def _raise_request_error(requests: RequestStream | None) -> None:
    """Raise what stopped the client's requests, which is why grpc.aio ended the call.

    grpc.aio reports it as a cancel of the call; a cancel of the task itself
    stays a cancel.
    """
    if requests is not None and requests.error is not None and not _task_cancelling():
        requests.raise_error()


def _cancelled_locally() -> RpcError:
    return RpcError(StatusCode.CANCELLED, "the call was cancelled by the client")


class AsyncBidiStream(AsyncResponseStream[Res], Generic[Req, Res]):
    """A bidirectional call whose requests are written one by one with :meth:`write`."""

    def __init__(
        self,
        method: Method[Req, Res],
        call: Any,
        *,
        frames: bool = False,
        encode: Callable[[Any], bytes] | None = None,
    ) -> None:
        super().__init__(call, method, frames=frames)
        self._method = method
        self._encode = encode or method.request_codec.encode

    async def write(self, request: Req) -> None:
        """Send ``request``."""
        check_request(self._method, request)
        if self._cancelled:
            raise _cancelled_locally()
        try:
            await self._call.write(self._encode(request))
        except grpc.RpcError as exc:
            raise _status_map.error_of(exc) from None
        except asyncio.InvalidStateError:
            # The call has ended: a failed call raises its status instead.
            code = await self._call.code()
            if code is grpc.StatusCode.OK:
                raise
            ended = grpc.aio.AioRpcError(
                code,
                await self._call.initial_metadata(),
                await self._call.trailing_metadata(),
                await self._call.details(),
            )
            raise _status_map.error_of(ended) from None

    async def done_writing(self) -> None:
        """Half-close: tell the server no more requests follow."""
        await self._call.done_writing()


class AsyncClient(ClientCore[grpc.aio.Channel]):
    """Typed calls of declared methods on a ``grpc.aio.Channel``.

    ``await client.call(Greeter.SayHello, request)`` returns the declared
    response type; for streaming methods ``client.call(...)`` is an async
    iterator of it. ``timeout``, ``metadata`` and ``wait_for_ready`` work as
    on :class:`~transport.Client`.
    """

    _insecure_channel = staticmethod(grpc.aio.insecure_channel)
    _secure_channel = staticmethod(grpc.aio.secure_channel)
    _multicallable_kwargs = multicallable_kwargs(grpc.aio.Channel.unary_unary)

    def _argument(self, method: Method[Any, Any], request: Any) -> tuple[RequestStream | None, Any]:
        """The requests of a client stream (else ``None``) and what to hand grpcio."""
        if not method.cardinality.client_streaming:
            check_request(method, request)
            return None, self._request_encoder(method)(request)
        requests = RequestStream(method, request, self._request_encoder(method))
        return requests, requests.encoded_async()

    @overload
    def call(
        self,
        method: UnaryUnary[Req, Res],
        request: Req,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> Awaitable[Res]: ...
    @overload
    def call(
        self,
        method: UnaryStream[Req, Res],
        request: Req,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> AsyncResponseStream[Res]: ...
    @overload
    def call(
        self,
        method: StreamUnary[Req, Res],
        request: Iterable[Req] | AsyncIterable[Req],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> Awaitable[Res]: ...
    @overload
    def call(
        self,
        method: StreamStream[Req, Res],
        request: Iterable[Req] | AsyncIterable[Req],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> AsyncResponseStream[Res]: ...
    def call(
        self,
        method: Method[Any, Any],
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> Any:
        """Call ``method`` with ``request`` (an iterable or async iterable for client streams).

        Raises :class:`~transport.RpcError` when the call ends with a non-OK status.
        """
        requests, argument = self._argument(method, request)
        options = self._options(method, timeout, metadata, wait_for_ready, compression)
        if method.cardinality.server_streaming:
            call = self._multicallable(method)(argument, **options)
            stream = AsyncResponseStream(call, method, frames=self._reads_frames(method))
            stream._sending = requests
            if self._learns(method):
                stream._on_end = self._learn
            return stream
        return self._unary(method, argument, options, requests)

    async def _unary(
        self, method: Method[Any, Any], argument: Any, options: Any, requests: RequestStream | None
    ) -> Any:
        try:
            call = self._multicallable(method)(argument, **options)
            data = await _response_of(call)
            if self._learns(method):
                self._peer_reads_frames = _attachments.announced(await call.trailing_metadata())
        except grpc.RpcError as exc:
            _raise_request_error(requests)
            raise _status_map.error_of(exc) from None
        except asyncio.CancelledError:
            _raise_request_error(requests)
            raise
        return decode_response(method, data, frames=self._reads_frames(method))

    @overload
    async def with_call(
        self,
        method: UnaryUnary[Req, Res],
        request: Req,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> tuple[Res, CallInfo]: ...
    @overload
    async def with_call(
        self,
        method: StreamUnary[Req, Res],
        request: Iterable[Req] | AsyncIterable[Req],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> tuple[Res, CallInfo]: ...
    async def with_call(
        self,
        method: Method[Any, Any],
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> tuple[Any, CallInfo]:
        """Like :meth:`call` for a unary response, also returning the call's metadata."""
        if method.cardinality.server_streaming:
            raise TypeError(f"{method.path} streams its responses: use call() and iterate")
        requests, argument = self._argument(method, request)
        call = self._multicallable(method)(
            argument, **self._options(method, timeout, metadata, wait_for_ready, compression)
        )
        try:
            data = await _response_of(call)
            info = CallInfo(
                user_metadata(await call.initial_metadata()),
                user_metadata(await call.trailing_metadata()),
            )
        except grpc.RpcError as exc:
            _raise_request_error(requests)
            raise _status_map.error_of(exc) from None
        except asyncio.CancelledError:
            _raise_request_error(requests)
            raise
        if self._learns(method):
            self._peer_reads_frames = _attachments.announced(info.trailing_metadata)
        return decode_response(method, data, frames=self._reads_frames(method)), info

    def open(
        self,
        method: StreamStream[Req, Res],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> AsyncBidiStream[Req, Res]:
        """Start a bidirectional call whose requests you :meth:`~AsyncBidiStream.write`."""
        if method.cardinality is not Cardinality.STREAM_STREAM:
            raise TypeError(f"{method.path} is not bidirectional")
        call = self._multicallable(method)(
            **self._options(method, timeout, metadata, wait_for_ready, compression)
        )
        return AsyncBidiStream(
            method, call, frames=self._reads_frames(method), encode=self._send_encoder(method)
        )

    async def close(self) -> None:
        """Close the channel if this client opened it."""
        if self._owns_channel:
            await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _response_of(call: Any) -> Any:
    """Await a unary-response ``grpc.aio`` call so that a cancel of the caller stays its own.

    grpc.aio runs the call in an inner task that swallows a cancel and raises a
    new, bare CancelledError, which an anyio cancel scope does not recognise as
    its own, so the cancel would escape the scope. Waiting on a future of ours
    keeps the caller's CancelledError.
    """
    if not call.done():
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_done(_: object) -> None:
            if not finished.done():
                finished.set_result(None)

        call.add_done_callback(on_done)
        try:
            await finished
        except asyncio.CancelledError:
            call.cancel()
            raise
    return await call


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
