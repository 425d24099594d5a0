"""The synchronous client: typed calls of declared methods over a ``grpc.Channel``."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar, overload

import grpc

from .. import deadlines as _deadlines
from .._status_map import client_errors
from ..encoding import frames as _attachments
from ..errors import RpcError
from ..interceptors import ClientCall, chain
from ..metadata import CallInfo, Metadata, MetadataTuple, user_metadata
from ..service import Cardinality, Method, StreamStream, StreamUnary, UnaryStream, UnaryUnary
from ..status import StatusCode
from .calls import (
    RefusalRetry,
    RequestStream,
    check_request,
    decode_response,
    multicallable_kwargs,
)
from .coalescing import coalesced
from .core import ClientCore
from .intercepted import InterceptedBidiStream, InterceptedStream, written
from .slots import CallSlots
from .streams import BidiStream, ResponseStream, as_call

__all__ = ["Client"]

Req = TypeVar("Req")
Res = TypeVar("Res")
# A stream used as a context manager keeps its own type (BidiStream stays one).
Stream = TypeVar("Stream", bound="ResponseStream[Any]")

_CLOSE = object()


class Client(ClientCore[grpc.Channel]):
    """Typed calls of declared methods on a ``grpc.Channel``.

    ``client.call(Greeter.SayHello, request)`` returns the declared response
    type; streaming methods return an iterator of it. ``timeout``,
    ``metadata`` and ``wait_for_ready`` given here apply to every call unless a
    call overrides them; ``wait_for_ready=True`` makes a call wait (up to its
    timeout) for an unreachable server instead of failing UNAVAILABLE at once.
    At most ``max_calls_in_flight`` unary calls (48; ``None``: no bound) are in
    flight at once, across threads; more wait, within their timeout, for one to
    end. A call whose stream the server refuses is sent again if its request
    is one message (and, streaming back, before its first response).
    """

    # Looked up at each connect(), not bound at import, so that instrumentation
    # replacing grpc's constructors later (opentelemetry-instrumentation-grpc) sees them.
    _insecure_channel = staticmethod(lambda *args, **kwargs: grpc.insecure_channel(*args, **kwargs))
    _secure_channel = staticmethod(lambda *args, **kwargs: grpc.secure_channel(*args, **kwargs))
    _multicallable_kwargs = multicallable_kwargs(grpc.Channel.unary_unary)
    _call_slots = CallSlots
    _asynchronous = False
    _cancelled_by_caller = True
    _as_call = staticmethod(as_call)

    def _request_stream(
        self, method: Method[Any, Any], request: Any
    ) -> tuple[RequestStream | None, Any]:
        """The requests of a client stream (else ``None``) and what to hand grpcio."""
        if not method.cardinality.client_streaming:
            return None, self._encode_one(method, request)
        requests = RequestStream(method, request, self._request_encoder(method))
        limit = self._request_batch_limit()
        return requests, coalesced(requests.encoded(), limit) if limit else requests.encoded()

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
    ) -> Res: ...
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
    ) -> ResponseStream[Res]: ...
    @overload
    def call(
        self,
        method: StreamUnary[Req, Res],
        request: Iterable[Req],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> Res: ...
    @overload
    def call(
        self,
        method: StreamStream[Req, Res],
        request: Iterable[Req],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> ResponseStream[Res]: ...
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
        """Call ``method`` with ``request`` (an iterable of requests for client streams).

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
        requests, argument = self._request_stream(method, request)
        if method.cardinality.server_streaming:
            options = self._options(method, timeout, metadata, wait_for_ready, compression)
            return self._response_stream(ResponseStream, method, argument, options, requests)
        options = self._options(method, timeout, metadata, wait_for_ready, compression)
        learns_batches = requests is not None and self.coalesce
        with client_errors(requests):
            if self._learns(method) or learns_batches:
                data, call = self._unary(method, argument, options, requests, with_call=True)
                if self._learns(method):
                    self._peer_reads_frames = _attachments.announced(call.trailing_metadata())
                if learns_batches:
                    self._learn_batches(call.initial_metadata())
            else:
                data, _ = self._unary(method, argument, options, requests, with_call=False)
        return decode_response(method, data, frames=self._reads_frames(method))

    def _unary(
        self,
        method: Method[Any, Any],
        argument: Any,
        options: dict[str, Any],
        requests: RequestStream | None,
        *,
        with_call: bool,
    ) -> tuple[bytes, Any]:
        """Make a unary-response call.

        A unary request waits for one of the client's call slots, and is sent
        again when the server refuses its stream (:class:`RefusalRetry`).
        """
        invoke = self._multicallable(method)
        slots = self._slots if requests is None else None
        if slots is not None:
            timeout = options["timeout"]
            left = slots.acquire(timeout)
            if left is not timeout:
                options = {**options, "timeout": left}
        try:
            retry = RefusalRetry(options["timeout"]) if requests is None else None
            while True:
                try:
                    return _blocking(invoke, argument, options, with_call)
                except grpc.RpcError as exc:
                    delay = None if retry is None else retry.delay(exc)
                    if retry is None or delay is None:
                        raise
                time.sleep(delay)
                options = {**options, "timeout": retry.timeout()}
        finally:
            if slots is not None:
                slots.release()

    def _encode_one(self, method: Method[Any, Any], request: Any) -> bytes:
        check_request(method, request)
        return self._encode_request(method, request)

    @overload
    def with_call(
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
    def with_call(
        self,
        method: StreamUnary[Req, Res],
        request: Iterable[Req],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> tuple[Res, CallInfo]: ...
    def with_call(
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
            return self._with_call(method, request, timeout, metadata, wait_for_ready, compression)
        infos: list[CallInfo] = []

        def last(argument: Any, call: ClientCall) -> Any:
            response, info = self._with_call(
                method, argument, call.timeout, call.metadata, wait_for_ready, compression
            )
            infos.append(info)
            return response

        response = self._through_interceptors(method, request, timeout, metadata, last)
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
        """:meth:`call` through the interceptors; a response stream keeps its methods."""
        streams: list[ResponseStream[Any]] = []

        def last(argument: Any, call: ClientCall) -> Any:
            response = self._call(
                method, argument, call.timeout, call.metadata, wait_for_ready, compression
            )
            if method.cardinality.server_streaming:
                streams.append(response)
            return response

        response = self._through_interceptors(method, request, timeout, metadata, last)
        if not method.cardinality.server_streaming or isinstance(response, ResponseStream):
            return response
        return InterceptedStream(streams[-1] if streams else None, response)

    def _through_interceptors(
        self,
        method: Method[Any, Any],
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        last: Callable[[Any, ClientCall], Any],
    ) -> Any:
        call = self._client_call(method, timeout, metadata)
        return chain(self.interceptors, call, lambda argument: last(argument, call))(request)

    def _with_call(
        self,
        method: Method[Any, Any],
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | str | None,
    ) -> tuple[Any, CallInfo]:
        requests, argument = self._request_stream(method, request)
        options = self._options(method, timeout, metadata, wait_for_ready, compression)
        with client_errors(requests):
            data, call = self._unary(method, argument, options, requests, with_call=True)
        if self._learns(method):
            self._peer_reads_frames = _attachments.announced(call.trailing_metadata())
        if requests is not None and self.coalesce:
            self._learn_batches(call.initial_metadata())
        info = CallInfo(
            user_metadata(call.initial_metadata()), user_metadata(call.trailing_metadata())
        )
        return decode_response(method, data, frames=self._reads_frames(method)), info

    def open(
        self,
        method: StreamStream[Req, Res],
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | str | None = None,
    ) -> BidiStream[Req, Res]:
        """Start a bidirectional call whose requests you :meth:`~BidiStream.write` one by one."""
        if method.cardinality is not Cardinality.STREAM_STREAM:
            raise TypeError(f"{method.path} is not bidirectional")
        if self.interceptors:
            outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
            responses = self._intercepted(
                method, written(outbox), timeout, metadata, wait_for_ready, compression
            )
            return InterceptedBidiStream(method, outbox, responses)
        stream = BidiStream(
            method,
            self._multicallable(method),
            self._batches_read(),
            self._reads_frames(method),
            self._send_encoder(method),
            **self._options(method, timeout, metadata, wait_for_ready, compression),
        )
        served = _deadlines.caller()
        if served is not None:
            served.cancel_with(stream._call)
        if self.coalesce:
            stream._batch_limit = self._request_batch_limit()

            def learn(initial_metadata: MetadataTuple) -> None:
                stream._batch_limit = self._learn_batches(initial_metadata)

            stream._on_initial = learn
        return stream

    def close(self) -> None:
        """Close the channel if this client opened it."""
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _blocking(
    invoke: Any, argument: Any, options: dict[str, Any], with_call: bool
) -> tuple[Any, Any]:
    """Make a unary-response call and wait for its end: its response, and the call if asked.

    Made inside a sync handler, the call is cancelled when the handler's own
    call ends (:mod:`transport.deadlines`), so it is started as a future.
    """
    served = _deadlines.caller()
    if served is None or not served.cancels:
        if with_call:
            return invoke.with_call(argument, **options)  # type: ignore[no-any-return]
        return invoke(argument, **options), None
    future = invoke.future(argument, **options)
    served.cancel_with(future)
    try:
        return future.result(), future
    except grpc.FutureCancelledError:
        raise RpcError(
            StatusCode.CANCELLED, "the call being served ended, so this call was cancelled"
        ) from None
