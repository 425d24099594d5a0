"""The sync client's streams: responses decoded as they arrive, a bidi stream written."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc

from .._status_map import client_errors
from ..encoding import batches as _batches
from ..metadata import MetadataTuple, as_metadata, user_metadata
from ..service import Method
from .calls import StreamedResponses, check_request

__all__ = ["BareResponses", "BidiStream", "ResponseStream"]

Req = TypeVar("Req")
Res = TypeVar("Res")
# A stream used as a context manager keeps its own type (BidiStream stays one).
Stream = TypeVar("Stream", bound="ResponseStream[Any]")

_CLOSE = object()


class BareResponses:
    """A response iterator that is not a ``grpc.Call``, read as a call without metadata.

    grpcio's channel interceptors must hand back an object that is both, but
    some return a bare generator (opentelemetry-instrumentation-grpc's client
    interceptor does for server streams): its responses are read, its metadata
    is empty, and cancelling it closes the generator.
    """

    def __init__(self, responses: Iterator[Any]) -> None:
        self._responses = responses
        self._done = False

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._responses)
        except StopIteration:
            self._done = True
            raise

    def initial_metadata(self) -> tuple[()]:
        """None that can be read."""
        return ()

    def trailing_metadata(self) -> tuple[()]:
        """None that can be read."""
        return ()

    def cancel(self) -> bool:
        """Close the generator (which ends the call it reads, if it does so on close)."""
        close = getattr(self._responses, "close", None)
        if close is not None:
            close()
        self._done = True
        return True

    def done(self) -> bool:
        """Whether the responses have ended or were cancelled."""
        return self._done


def as_call(started: Any) -> Any:
    """``started`` if it is a call, else its responses as :class:`BareResponses`."""
    return started if hasattr(started, "initial_metadata") else BareResponses(started)


class ResponseStream(StreamedResponses[Res]):
    """The responses of a server-streaming or bidirectional call, decoded as they arrive.

    Iterate it; use it as a context manager to cancel the call if you stop early.
    """

    def __iter__(self) -> Iterator[Res]:
        return self

    def __next__(self) -> Res:
        held = self._held()
        if held is not None:
            return self._decode(held)
        try:
            with client_errors(self._sending):
                data = self._read()
        except StopIteration:
            if self._on_end is not None:
                self._on_end(as_metadata(self._call.trailing_metadata()))
            raise
        if self._on_initial is not None:
            self._on_initial(as_metadata(self._call.initial_metadata()))
            self._on_initial = None
        if self._batches and not self._batches_confirmed:
            self._confirm_batches(as_metadata(self._call.initial_metadata()))
        return self._message(data)

    def _read(self) -> Any:
        """The next message; the call is started again while the server refuses its stream."""
        while True:
            try:
                data = next(self._call)
            except grpc.RpcError as exc:
                delay = None if self._retry is None else self._retry.delay(exc)
                if self._again is None or self._retry is None or delay is None:
                    raise
            else:
                self._again = None  # a response came: the call is under way
                return data
            time.sleep(delay)
            self._call = self._again(self._retry.timeout())

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
        batches: int,
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
