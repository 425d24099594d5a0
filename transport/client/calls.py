"""Pieces shared by the sync and asyncio clients: request streams and response decoding."""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import grpc

from ..encoding import batches as _batches
from ..encoding import wires as _wires
from ..errors import DecodeError, DecodeLimitError, RpcError
from ..metadata import MetadataTuple
from ..service import Method
from ..status import StatusCode

Res = TypeVar("Res")


def check_request(method: Method[Any, Any], request: Any) -> None:
    """Refuse a request of the wrong type before anything is sent."""
    if not isinstance(request, method.request_type):
        raise TypeError(
            f"{method.path} takes {method.request_type.__name__}, got {type(request).__name__}"
        )


class RequestStream:
    """A client's stream of requests, checked and encoded as grpcio pulls them.

    When the iterable raises, or yields a request of the wrong type, grpcio
    cancels the call and reports only UNKNOWN "Exception iterating requests!"
    (sync) or a bare CancelledError (asyncio). The exception is kept here so
    that the call raises it instead, where the requests came from.
    """

    __slots__ = ("_encode", "_method", "_requests", "error")

    def __init__(
        self,
        method: Method[Any, Any],
        requests: Iterable[Any] | AsyncIterable[Any],
        encode: Callable[[Any], bytes],
    ) -> None:
        self._method = method
        self._requests = requests
        self._encode = encode
        self.error: Exception | None = None

    def encoded(self) -> Iterator[bytes]:
        """The encoded requests, for grpcio's sync channel."""
        try:
            for request in self._requests:  # type: ignore[union-attr]
                check_request(self._method, request)
                yield self._encode(request)
        except Exception as exc:
            self.error = exc
            raise

    async def encoded_async(self) -> AsyncIterator[bytes]:
        """The encoded requests, for grpcio's asyncio channel (sync iterables too)."""
        try:
            if isinstance(self._requests, AsyncIterable):
                async for request in self._requests:
                    check_request(self._method, request)
                    yield self._encode(request)
            else:
                for request in self._requests:
                    check_request(self._method, request)
                    yield self._encode(request)
        except Exception as exc:
            self.error = exc
            raise

    def raise_error(self) -> None:
        """Raise what stopped the requests, if anything did."""
        if self.error is not None:
            raise self.error from None


def decode_response(method: Method[Any, Any], data: bytes, *, frames: bool = False) -> Any:
    """Decode a response; a payload that does not decode is INVALID_ARGUMENT with the path.

    The wire is the response's own (its first byte). An attachment frame is read
    only with ``frames`` (the call announced that it reads them).
    """
    try:
        return _wires.decode_reply(method, data, frames)
    except DecodeLimitError as exc:
        raise RpcError(
            StatusCode.RESOURCE_EXHAUSTED, f"response is too large to decode: {exc}"
        ) from None
    except DecodeError as exc:
        raise RpcError(StatusCode.INVALID_ARGUMENT, f"response does not decode: {exc}") from None


class StreamedResponses(Generic[Res]):
    """What the sync and asyncio response streams share: their settings and message decoding."""

    # Told the trailing metadata when the stream ends (the client learns frames there).
    _on_end: Callable[[MetadataTuple], None] | None = None
    # The client's own stream of requests, whose failure ends the call.
    _sending: RequestStream | None = None
    # Told the initial metadata with the first response (the client learns batches there).
    _on_initial: Callable[[MetadataTuple], object] | None = None
    # Starts the call again (given what is left of its timeout) while the server
    # refuses its stream; only for a unary request, until a response arrives.
    _again: Callable[[float | None], Any] | None = None
    _retry: RefusalRetry | None = None

    def __init__(
        self,
        call: Any,
        method: Method[Any, Res],
        batches: int = 0,
        *,
        frames: bool = False,
        in_band: bool = False,
    ) -> None:
        self._call = call
        self._method = method
        self._frames = frames
        # ``batches``: how large a batch the call announced it reads (0: none).
        # A batch is read only from a server that said it sends them: in its initial
        # metadata, or (in_band) by having read this call's request as a batch.
        self._batch_bytes = batches
        self._batches = batches > 0
        self._batches_confirmed = in_band
        # Messages of a batch not yet handed out, each made as it is taken.
        self._unpacked: Iterator[memoryview] = iter(())

    def _confirm_batches(self, initial: MetadataTuple) -> None:
        """With the first response: whether the server's initial metadata says it sends batches."""
        self._batches_confirmed = True
        self._batches = _batches.batch_limit(initial) > 0

    def _message(self, data: Any) -> Res:
        """The first (or only) response in ``data``; the rest of a batch is kept for later."""
        if self._batches and data[:1] == _batches.LEAD_BYTE:
            try:
                self._unpacked = _batches.unpack(data, self._batch_bytes)
            except DecodeLimitError as exc:
                self._call.cancel()
                raise RpcError(
                    StatusCode.RESOURCE_EXHAUSTED, f"response is too large: {exc}"
                ) from None
            except DecodeError as exc:
                self._call.cancel()
                raise RpcError(
                    StatusCode.INVALID_ARGUMENT, f"response does not decode: {exc}"
                ) from None
            return self._decode(next(self._unpacked))  # a frame holds one message or more
        return self._decode(data)

    def _held(self) -> memoryview | None:
        """The next message of the batch being read, if one is left."""
        return next(self._unpacked, None)

    def _decode(self, data: Any) -> Res:
        try:
            return decode_response(self._method, data, frames=self._frames)  # type: ignore[no-any-return]
        except RpcError:
            self._call.cancel()
            raise


def multicallable_kwargs(factory: Any) -> dict[str, Any]:
    """Extra keywords for ``channel.unary_unary`` and friends that this grpcio supports.

    Registered methods (grpcio >= 1.63) skip a per-call method lookup.
    """
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {"_registered_method": True} if "_registered_method" in parameters else {}


def refused(exc: grpc.RpcError) -> bool:
    """Whether the server refused the call's stream (HTTP/2 REFUSED_STREAM).

    A refused stream never reached a handler (RFC 9113, section 8.7), so sending
    the call again is safe. grpcio reports it as UNAVAILABLE "Stream removed
    (RST_STREAM (Received RST_STREAM with error code 7))", once its own single
    transparent retry was refused too.
    """
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if not (callable(code) and callable(details)) or code() != grpc.StatusCode.UNAVAILABLE:
        return False
    return "RST_STREAM with error code 7" in (details() or "")


class RefusalRetry:
    """When to send a refused call again: jittered, doubling delays, within its timeout.

    A gRPC server that bounds the streams of a connection counts a finished
    stream until it has freed it, so a client that keeps the connection at the
    bound is refused now and then; the server catches up as the burst drains.
    Delays run from 1-2 ms up to 50-100 ms, for at most :attr:`WINDOW` seconds
    from the first refusal, and never past the call's deadline.
    """

    WINDOW = 10.0
    FIRST_DELAY = 0.002
    LONGEST_DELAY = 0.1

    __slots__ = ("_deadline", "_given_up_at", "_tries")

    def __init__(self, timeout: float | None) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._given_up_at: float | None = None
        self._tries = 0

    def delay(self, exc: grpc.RpcError) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to raise ``exc``."""
        if not refused(exc):
            return None
        now = time.monotonic()
        if self._given_up_at is None:
            self._given_up_at = now + self.WINDOW
        ceiling = min(self.LONGEST_DELAY, self.FIRST_DELAY * 2 ** min(self._tries, 16))
        self._tries += 1
        delay = random.uniform(ceiling / 2, ceiling)
        last = (
            self._given_up_at if self._deadline is None else min(self._given_up_at, self._deadline)
        )
        return None if now + delay >= last else delay

    def timeout(self) -> float | None:
        """What is left of the call's timeout, for the next attempt."""
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
