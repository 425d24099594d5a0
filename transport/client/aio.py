"""The asyncio client: typed calls of declared methods over a ``grpc.aio.Channel``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar, overload

import grpc
import grpc.aio

from .. import _grpc_fixes
from .._status_map import client_errors
from ..encoding import frames as _attachments
from ..interceptors import ClientCall, chain
from ..metadata import CallInfo, Metadata, MetadataTuple, user_metadata
from ..service import Cardinality, Method, StreamStream, StreamUnary, UnaryStream, UnaryUnary
from .aio_streams import AsyncBidiStream, AsyncResponseStream
from .calls import (
    RefusalRetry,
    RequestStream,
    check_request,
    decode_response,
    multicallable_kwargs,
)
from .coalescing import coalesced_async
from .core import ClientCore
from .intercepted import AsyncInterceptedBidiStream, AsyncInterceptedStream, written_async
from .slots import AsyncCallSlots

_grpc_fixes.apply()

__all__ = ["AsyncClient"]

Req = TypeVar("Req")
Res = TypeVar("Res")
T = TypeVar("T")
# A stream used as a context manager keeps its own type (BidiStream stays one).
Stream = TypeVar("Stream", bound="AsyncResponseStream[Any]")


class AsyncClient(ClientCore[grpc.aio.Channel]):
    """Typed calls of declared methods on a ``grpc.aio.Channel``.

    ``await client.call(Greeter.SayHello, request)`` returns the declared
    response type; for streaming methods ``client.call(...)`` is an async
    iterator of it. ``timeout``, ``metadata``, ``wait_for_ready`` and
    ``max_calls_in_flight`` work as on :class:`~transport.Client`.
    """

    # Looked up at each connect(), as Client's (instrumentation may replace them later).
    _insecure_channel = staticmethod(
        lambda *args, **kwargs: grpc.aio.insecure_channel(*args, **kwargs)
    )
    _secure_channel = staticmethod(lambda *args, **kwargs: grpc.aio.secure_channel(*args, **kwargs))
    _multicallable_kwargs = multicallable_kwargs(grpc.aio.Channel.unary_unary)
    _call_slots = AsyncCallSlots
    _asynchronous = True
    _cancelled_by_caller = False

    def _argument(self, method: Method[Any, Any], request: Any) -> tuple[RequestStream | None, Any]:
        """The requests of a client stream (else ``None``) and what to hand grpcio."""
        if not method.cardinality.client_streaming:
            check_request(method, request)
            return None, self._encode_request(method, request)
        requests = RequestStream(method, request, self._request_encoder(method))
        limit = self._request_batch_limit()
        encoded = requests.encoded_async()
        return requests, coalesced_async(encoded, limit) if limit else encoded

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
        if self.interceptors:
            return self._intercepted(
                method, request, timeout, metadata, wait_for_ready, compression
            )
        return self._call(method, request, timeout, metadata, wait_for_ready, compression)

    def _call(
        self,
        method: Method[Any, Any],
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | str | None,
    ) -> Any:
        requests, argument = self._argument(method, request)
        options = self._options(method, timeout, metadata, wait_for_ready, compression)
        if method.cardinality.server_streaming:
            return self._response_stream(AsyncResponseStream, method, argument, options, requests)
        return self._unary(method, argument, options, requests)

    async def _unary(
        self, method: Method[Any, Any], argument: Any, options: Any, requests: RequestStream | None
    ) -> Any:
        with client_errors(requests):
            data, call = await self._finished(method, argument, options, requests)
            if self._learns(method):
                self._peer_reads_frames = _attachments.announced(await call.trailing_metadata())
            if requests is not None and self.coalesce:
                self._learn_batches(await call.initial_metadata())
        return decode_response(method, data, frames=self._reads_frames(method))

    async def _finished(
        self,
        method: Method[Any, Any],
        argument: Any,
        options: dict[str, Any],
        requests: RequestStream | None,
    ) -> tuple[bytes, Any]:
        """Make a unary-response call and wait for its end.

        A unary request waits for one of the client's call slots, and is sent
        again when the server refuses its stream (:class:`RefusalRetry`).
        """
        slots = self._slots if requests is None else None
        if slots is not None:
            timeout = options["timeout"]
            left = await slots.acquire(timeout)
            if left is not timeout:
                options = {**options, "timeout": left}
        try:
            retry = RefusalRetry(options["timeout"]) if requests is None else None
            while True:
                call = self._multicallable(method)(argument, **options)
                try:
                    return await _response_of(call), call
                except grpc.RpcError as exc:
                    delay = None if retry is None else retry.delay(exc)
                    if retry is None or delay is None:
                        raise
                await asyncio.sleep(delay)
                options = {**options, "timeout": retry.timeout()}
        finally:
            if slots is not None:
                slots.release()

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
        if not self.interceptors:
            return await self._with_call(
                method, request, timeout, metadata, wait_for_ready, compression
            )
        infos: list[CallInfo] = []

        async def last(argument: Any, call: ClientCall) -> Any:
            response, info = await self._with_call(
                method, argument, call.timeout, call.metadata, wait_for_ready, compression
            )
            infos.append(info)
            return response

        response = await self._through_interceptors(method, request, timeout, metadata, last)
        return response, infos[-1] if infos else CallInfo((), ())

    def _intercepted(
        self,
        method: Method[Any, Any],
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | str | None,
    ) -> Any:
        """:meth:`call` through the interceptors: an awaitable, or a stream started when read.

        Interceptors see requests of a stream as an async iterator, whatever was given.
        """
        streams: list[AsyncResponseStream[Any]] = []
        if method.cardinality.client_streaming and not isinstance(request, AsyncIterable):
            request = _as_async(request)

        async def last(argument: Any, call: ClientCall) -> Any:
            response = self._call(
                method, argument, call.timeout, call.metadata, wait_for_ready, compression
            )
            if not method.cardinality.server_streaming:
                return await response
            streams.append(response)
            return response

        def start() -> Awaitable[Any]:
            return self._through_interceptors(method, request, timeout, metadata, last)

        if method.cardinality.server_streaming:
            return AsyncInterceptedStream(start, streams)
        return start()

    def _through_interceptors(
        self,
        method: Method[Any, Any],
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        last: Callable[[Any, ClientCall], Awaitable[Any]],
    ) -> Awaitable[Any]:
        call = self._client_call(method, timeout, metadata)
        awaitable: Awaitable[Any] = chain(
            self.interceptors, call, lambda argument: last(argument, call)
        )(request)
        return awaitable

    async def _with_call(
        self,
        method: Method[Any, Any],
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | str | None,
    ) -> tuple[Any, CallInfo]:
        requests, argument = self._argument(method, request)
        options = self._options(method, timeout, metadata, wait_for_ready, compression)
        with client_errors(requests):
            data, call = await self._finished(method, argument, options, requests)
            info = CallInfo(
                user_metadata(await call.initial_metadata()),
                user_metadata(await call.trailing_metadata()),
            )
        if self._learns(method):
            self._peer_reads_frames = _attachments.announced(await call.trailing_metadata())
        if requests is not None and self.coalesce:
            self._learn_batches(await call.initial_metadata())
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
        if self.interceptors:
            outbox: asyncio.Queue[Any] = asyncio.Queue()
            responses = self._intercepted(
                method, written_async(outbox), timeout, metadata, wait_for_ready, compression
            )
            return AsyncInterceptedBidiStream(method, outbox, responses)
        call = self._multicallable(method)(
            **self._options(method, timeout, metadata, wait_for_ready, compression)
        )
        stream = AsyncBidiStream(
            method,
            call,
            self._batches_read(),
            frames=self._reads_frames(method),
            encode=self._send_encoder(method),
        )
        if self.coalesce:
            stream._coalesce(self._request_batch_limit())

            def learn(initial_metadata: MetadataTuple) -> None:
                stream._coalesce(self._learn_batches(initial_metadata))

            stream._on_initial = learn
        return stream

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


async def _as_async(requests: Iterable[Any]) -> AsyncIterator[Any]:
    for request in requests:
        yield request


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
