"""The synchronous client: typed calls of declared methods over a ``grpc.Channel``."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

import grpc

from .._status_map import client_errors
from ..encoding import batches as _batches
from ..encoding import frames as _attachments
from ..errors import DecodeError, RpcError
from ..metadata import CallInfo, Metadata, MetadataTuple, as_metadata, user_metadata
from ..service import Cardinality, Method, StreamStream, StreamUnary, UnaryStream, UnaryUnary
from ..status import StatusCode
from .calls import RequestStream, check_request, decode_response, multicallable_kwargs
from .coalescing import coalesced
from .core import ClientCore

__all__ = ["BidiStream", "Client", "ResponseStream"]

Req = TypeVar("Req")
Res = TypeVar("Res")
# A stream used as a context manager keeps its own type (BidiStream stays one).
Stream = TypeVar("Stream", bound="ResponseStream[Any]")

_CLOSE = object()


class ResponseStream(Generic[Res]):
    """The responses of a server-streaming or bidirectional call, decoded as they arrive.

    Iterate it; use it as a context manager to cancel the call if you stop early.
    """

    # Told the trailing metadata when the stream ends (the client learns frames there).
    _on_end: Callable[[MetadataTuple], None] | None = None
    # The client's own stream of requests, whose failure ends the call.
    _sending: RequestStream | None = None
    # Told the initial metadata with the first response (the client learns batches there).
    _on_initial: Callable[[MetadataTuple], object] | None = None

    def __init__(
        self,
        call: Any,
        method: Method[Any, Res],
        batches: bool = False,
        *,
        frames: bool = False,
        in_band: bool = False,
    ) -> None:
        self._call = call
        self._method = method
        self._frames = frames
        # Messages of a batch not yet handed out (only if the call announced batches).
        # A batch is read only from a server that said it sends them: in its initial
        # metadata, or (in_band) by having read this call's request as a batch.
        self._batches = batches
        self._batches_confirmed = in_band
        self._unpacked: deque[memoryview] = deque()

    def __iter__(self) -> Iterator[Res]:
        return self

    def __next__(self) -> Res:
        if self._unpacked:
            return self._decode(self._unpacked.popleft())
        try:
            with client_errors(self._sending):
                data = next(self._call)
        except StopIteration:
            if self._on_end is not None:
                self._on_end(as_metadata(self._call.trailing_metadata()))
            raise
        if self._on_initial is not None:
            self._on_initial(as_metadata(self._call.initial_metadata()))
            self._on_initial = None
        if self._batches and not self._batches_confirmed:
            self._batches_confirmed = True
            initial = as_metadata(self._call.initial_metadata())
            self._batches = _batches.batch_limit(initial) > 0
        if self._batches and data[:1] == _batches.LEAD_BYTE:
            try:
                self._unpacked.extend(_batches.unpack(data))
            except DecodeError as exc:
                self._call.cancel()
                raise RpcError(
                    StatusCode.INVALID_ARGUMENT, f"response does not decode: {exc}"
                ) from None
            return self._decode(self._unpacked.popleft())
        return self._decode(data)

    def _decode(self, data: Any) -> Res:
        try:
            return decode_response(self._method, data, frames=self._frames)  # type: ignore[no-any-return]
        except RpcError:
            self._call.cancel()
            raise

    def initial_metadata(self) -> MetadataTuple:
        """The server's initial metadata (waits for it)."""
        return user_metadata(self._call.initial_metadata())

    def trailing_metadata(self) -> MetadataTuple:
        """The server's trailing metadata (waits for the call to end)."""
        return user_metadata(self._call.trailing_metadata())

    def cancel(self) -> None:
        """Cancel the call; the server's handler is stopped."""
        self._call.cancel()

    def done(self) -> bool:
        """Whether the call has ended."""
        return bool(self._call.done())

    def __enter__(self: Stream) -> Stream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._call.done():
            self._call.cancel()


class BidiStream(ResponseStream[Res], Generic[Req, Res]):
    """A bidirectional call whose requests are sent one by one with :meth:`write`.

    Use it when what to send depends on what was received (the server speaks
    first, say). Call :meth:`done_writing` to half-close.
    """

    def __init__(
        self,
        method: Method[Req, Res],
        multicallable: Any,
        batches: bool,
        frames: bool,
        encode: Callable[[Any], bytes],
        **call_options: Any,
    ) -> None:
        self._method = method
        self._encode = encode
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = threading.Event()
        # How large a batch of requests the server reads: 0 until it says so.
        self._batch_limit = 0
        super().__init__(
            multicallable(self._requests(), **call_options), method, batches, frames=frames
        )

    def _requests(self) -> Iterator[bytes]:
        held: deque[bytes] = deque()  # taken from the outbox, not yet sent
        closing = False
        while True:
            if not held:
                item = _CLOSE if closing else self._outbox.get()
                if item is _CLOSE:
                    return
                held.append(item)  # type: ignore[arg-type]
            limit = self._batch_limit
            if not limit:
                yield held.popleft()
                continue
            # Add what else is already queued, up to a batch.
            queued = sum(map(len, held))
            while not closing and queued < limit:
                try:
                    item = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if item is _CLOSE:
                    closing = True
                else:
                    held.append(item)  # type: ignore[arg-type]
                    queued += len(item)  # type: ignore[arg-type]
            yield _batches.take(held, limit)[0]

    def write(self, request: Req) -> None:
        """Queue ``request`` to be sent (the same verb as :meth:`AsyncBidiStream.write`)."""
        if self._closed.is_set():
            raise ValueError("write() after done_writing()")
        check_request(self._method, request)
        self._outbox.put(self._encode(request))

    #: An alias of :meth:`write`, the verb of earlier releases.
    send = write

    def done_writing(self) -> None:
        """Half-close: tell the server no more requests follow."""
        if not self._closed.is_set():
            self._closed.set()
            self._outbox.put(_CLOSE)

    def cancel(self) -> None:
        """Cancel the call and stop the request side."""
        self.done_writing()
        super().cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.done_writing()
        super().__exit__(exc_type, exc, tb)


class Client(ClientCore[grpc.Channel]):
    """Typed calls of declared methods on a ``grpc.Channel``.

    ``client.call(Greeter.SayHello, request)`` returns the declared response
    type; streaming methods return an iterator of it. ``timeout``,
    ``metadata`` and ``wait_for_ready`` given here apply to every call unless a
    call overrides them; ``wait_for_ready=True`` makes a call wait (up to its
    timeout) for an unreachable server instead of failing UNAVAILABLE at once.
    """

    _insecure_channel = staticmethod(grpc.insecure_channel)
    _secure_channel = staticmethod(grpc.secure_channel)
    _multicallable_kwargs = multicallable_kwargs(grpc.Channel.unary_unary)

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
        requests, argument = self._request_stream(method, request)
        if method.cardinality.server_streaming:
            call = self._multicallable(method)(
                argument, **self._options(method, timeout, metadata, wait_for_ready, compression)
            )
            stream = ResponseStream(
                call,
                method,
                self.coalesce,
                frames=self._reads_frames(method),
                in_band=self._in_band(method),
            )
            stream._sending = requests
            if self._learns(method):
                stream._on_end = self._learn
            if self._learns_batches(method):
                stream._on_initial = self._learn_batches
            return stream
        options = self._options(method, timeout, metadata, wait_for_ready, compression)
        learns_batches = requests is not None and self.coalesce
        with client_errors(requests):
            if self._learns(method) or learns_batches:
                data, call = self._multicallable(method).with_call(argument, **options)
                if self._learns(method):
                    self._peer_reads_frames = _attachments.announced(call.trailing_metadata())
                if learns_batches:
                    self._learn_batches(call.initial_metadata())
            else:
                data = self._multicallable(method)(argument, **options)
        return decode_response(method, data, frames=self._reads_frames(method))

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
        requests, argument = self._request_stream(method, request)
        with client_errors(requests):
            data, call = self._multicallable(method).with_call(
                argument, **self._options(method, timeout, metadata, wait_for_ready, compression)
            )
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
        stream = BidiStream(
            method,
            self._multicallable(method),
            self.coalesce,
            self._reads_frames(method),
            self._send_encoder(method),
            **self._options(method, timeout, metadata, wait_for_ready, compression),
        )
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
