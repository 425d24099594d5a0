"""How one declared method's implementation runs inside a grpcio handler, sync or asyncio.

Each call: its wire settled (:class:`~transport.encoding.wires.CallWire`), its
requests decoded there (a decode error is INVALID_ARGUMENT, which grpcio's own
deserialiser hook would make INTERNAL), batches of a coalescing client
unpacked, large messages decoded and encoded off the event loop, replies
checked against the declared type, and any exception turned into a status by
the status map.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import grpc
import grpc.aio

from . import _status_map
from . import deadlines as _deadlines
from .client.coalescing import coalesced, coalesced_async
from .context import AsyncContext, Context
from .encoding import batches as _batches
from .encoding import frames as _attachments
from .encoding.wires import CallWire
from .errors import RpcError
from .service import Cardinality, Method
from .status import StatusCode

__all__ = [
    "CODEC_THREADS",
    "OFF_LOOP_BYTES",
    "Handler",
    "Served",
    "abort_async",
    "abort_sync",
    "async_behavior",
    "sync_behavior",
]

Handler = Callable[..., Any]


def _check(method: Method[Any, Any], reply: Any) -> Any:
    if not isinstance(reply, method.response_type):
        raise _status_map.ResponseTypeError(
            f"{method.path} returned {type(reply).__name__}, expected "
            f"{method.response_type.__name__}"
        )
    return reply


def _details_metadata(
    context: Context | AsyncContext, exc: Exception, status: _status_map.Status
) -> tuple[tuple[str, str | bytes], ...]:
    trailing = context.trailing_metadata
    if isinstance(exc, RpcError):
        # Metadata carried by the error itself goes out with its status.
        trailing += exc.trailing_metadata
    return trailing + _status_map.details_metadata(*status)


def abort_sync(
    grpc_context: grpc.ServicerContext, context: Context, exc: Exception, path: str
) -> None:
    """End a sync call with the status the status map gives ``exc`` (and its details)."""
    status = _status_map.status_of(exc, path)
    grpc_context.set_trailing_metadata(_details_metadata(context, exc, status))
    grpc_context.abort(_status_map.grpc_code(status[0]), status[1])


async def abort_async(
    grpc_context: grpc.aio.ServicerContext[Any, Any],
    context: AsyncContext,
    exc: Exception,
    path: str,
) -> None:
    """End an asyncio call with the status the status map gives ``exc`` (and its details)."""
    status = _status_map.status_of(exc, path)
    await grpc_context.abort(
        _status_map.grpc_code(status[0]), status[1], _details_metadata(context, exc, status)
    )


def _expired(grpc_context: Any) -> bool:
    """Whether the call's deadline has passed (grpcio reports no deadline as a huge number)."""
    remaining = grpc_context.time_remaining()
    return remaining is not None and remaining <= 0


# grpcio may end a request stream the same way for a half-close as for a client
# cancel or an expired deadline; the cancel is noticed a moment later. A handler
# must not take a dead call's requests for complete ones, so the end of the
# stream is checked against the deadline (and, on asyncio, the loop gets one
# turn to deliver a pending cancel of the handler's task).


class Served(Protocol):
    """What the handlers read of their binding at each call: its default wire."""

    wire: str


def _call_wire(method: Method[Any, Any], served: Served, grpc_context: Any) -> CallWire:
    """The call's wire: announced, else its first message's, else the binding's default."""
    return CallWire(
        method,
        grpc_context.invocation_metadata(),
        served.wire,
        _attachments.negotiates(method),
    )


def _decoded(
    requests: Iterator[bytes], decode: Callable[[Any], Any], grpc_context: Any, batched: bool
) -> Iterator[Any]:
    lead = _batches.LEAD_BYTE if batched else None
    for data in requests:
        if data[:1] == lead:  # a batch of a client that this server told it reads them
            for message in _batches.unpack(data, _batches.CEILING):
                yield decode(message)
        else:
            yield decode(data)
    if _expired(grpc_context):
        raise RpcError(StatusCode.DEADLINE_EXCEEDED, "the deadline passed")


#: An asyncio server decodes a request at least this large on a worker thread,
#: so that one large request never holds the event loop (and every other call).
OFF_LOOP_BYTES = 64 * 1024
#: The worker threads for that, shared by every asyncio server of the process:
#: few, so that few large messages are decoded at once (and few allocator
#: arenas keep their memory).
CODEC_THREADS = 2
_codec_threads: ThreadPoolExecutor | None = None


def _off_loop(work: Callable[[Any], Any], argument: Any) -> asyncio.Future[Any]:
    global _codec_threads
    if _codec_threads is None:
        _codec_threads = ThreadPoolExecutor(CODEC_THREADS, thread_name_prefix="transport-codec")
    return asyncio.get_running_loop().run_in_executor(_codec_threads, work, argument)


async def _decode_async(decode: Callable[[Any], Any], data: bytes | memoryview) -> Any:
    if len(data) < OFF_LOOP_BYTES:
        return decode(data)
    return await _off_loop(decode, data)


async def _encode_async(encode: Callable[[Any], bytes], reply: Any, large: bool) -> bytes:
    """``encode(reply)``, on a worker thread when it carries large arrays or buffers."""
    if large and _attachments.carries(reply, OFF_LOOP_BYTES):
        encoded: bytes = await _off_loop(encode, reply)
        return encoded
    return encode(reply)


async def _decoded_async(
    requests: AsyncIterator[bytes], decode: Callable[[Any], Any], grpc_context: Any, batched: bool
) -> AsyncIterator[Any]:
    lead = _batches.LEAD_BYTE if batched else None
    async for data in requests:
        if data[:1] == lead:  # a batch of a client that this server told it reads them
            for message in _batches.unpack(data, _batches.CEILING):
                yield await _decode_async(decode, message)
        else:
            yield await _decode_async(decode, data)
    await asyncio.sleep(0)
    if _expired(grpc_context):
        raise asyncio.CancelledError("the deadline passed")


def _batch_limit(grpc_context: Any, context: Context | AsyncContext) -> int:
    """How large a batch the client announced it reads (0: none); announce back that this end does.

    The announcement goes in the initial metadata, with the handler's own if
    it sends some.
    """
    limit = _batches.batch_limit(grpc_context.invocation_metadata())
    if limit:
        context._initial = (_batches.announcement(_batches.CEILING),)
    return limit


def _request_of(
    request: bytes, grpc_context: Any, context: Context | AsyncContext
) -> tuple[bytes | memoryview, int]:
    """The request of a server stream, and how large a batch its client reads (0: none).

    A client that knows this server reads batches says that it reads them too
    by sending its request as a batch of one, which costs no metadata; else it
    says so in its metadata, and this end answers in its initial metadata.
    """
    if request[:4] == _batches.MAGIC:
        return _batches.single(request), _batches.CEILING
    return request, _batch_limit(grpc_context, context)


def _encode_framed(call: CallWire, grpc_context: Any, context: Any, reply: Any) -> bytes:
    """A unary reply in the call's wire; as a frame, announcing that this end reads them too."""
    if call.frames:
        _attachments.announce(grpc_context, context.trailing_metadata)
    return call.encode(reply)


def sync_behavior(method: Method[Any, Any], fn: Handler, served: Served) -> Handler:
    """The grpcio behaviour of ``method`` served by the sync ``fn``."""
    path = method.path
    # Calls the implementation makes inherit this call's deadline and cancellation.
    fn = _deadlines.propagating(fn, method.cardinality.server_streaming)

    if method.cardinality is Cardinality.UNARY_UNARY:

        def unary_unary(data: bytes, grpc_context: grpc.ServicerContext) -> bytes | None:
            context = Context(grpc_context)
            try:
                call = _call_wire(method, served, grpc_context)
                reply = _check(method, fn(call.decode(data), context))
                return _encode_framed(call, grpc_context, context, reply)
            except Exception as exc:
                abort_sync(grpc_context, context, exc, path)
                return None

        return unary_unary

    if method.cardinality is Cardinality.STREAM_UNARY:

        def stream_unary(
            requests: Iterator[bytes], grpc_context: grpc.ServicerContext
        ) -> bytes | None:
            context = Context(grpc_context)
            try:
                call = _call_wire(method, served, grpc_context)
                batched = _batch_limit(grpc_context, context) > 0
                reply = _check(
                    method, fn(_decoded(requests, call.decode, grpc_context, batched), context)
                )
                context._send_own_initial()
                return _encode_framed(call, grpc_context, context, reply)
            except Exception as exc:
                abort_sync(grpc_context, context, exc, path)
                return None

        return stream_unary

    client_streaming = method.cardinality.client_streaming

    def streaming(request: Any, grpc_context: grpc.ServicerContext) -> Iterator[bytes]:
        context = Context(grpc_context)
        try:
            call = _call_wire(method, served, grpc_context)
            if client_streaming:
                limit = _batch_limit(grpc_context, context)
                argument = _decoded(request, call.decode, grpc_context, limit > 0)
            else:
                data, limit = _request_of(request, grpc_context, context)
                argument = call.decode(data)
            replies: Iterator[bytes] = (
                call.encode(_check(method, reply)) for reply in fn(argument, context)
            )
            if limit:
                replies = coalesced(replies, limit, grpc_context.add_callback)
            if context._initial:
                replies = _after_initial_sync(replies, context)
            yield from replies
            if call.frames:
                _attachments.announce(grpc_context, context.trailing_metadata)
        except Exception as exc:
            abort_sync(grpc_context, context, exc, path)

    return streaming


def _after_initial_sync(replies: Iterator[bytes], context: Context) -> Iterator[bytes]:
    """``replies``, the library's initial metadata sent before the first one."""
    for data in replies:
        context._send_own_initial()
        yield data
        yield from replies
        return


async def _encoded_async(
    replies: AsyncIterator[Any], method: Method[Any, Any], call: CallWire, carrying: bool
) -> AsyncIterator[bytes]:
    async for reply in replies:
        yield await _encode_async(call.encode, _check(method, reply), carrying)


def async_behavior(method: Method[Any, Any], fn: Handler, served: Served) -> Handler:
    """The grpcio behaviour of ``method`` served by the asyncio ``fn``."""
    path = method.path
    # Calls the implementation makes inherit this call's deadline.
    fn = _deadlines.propagating_async(fn, method.cardinality.server_streaming)
    client_streaming = method.cardinality.client_streaming
    carrying = method.response_codec.contents.buffers  # replies that may be large to encode

    if not method.cardinality.server_streaming:

        async def unary_response(
            request: Any, grpc_context: grpc.aio.ServicerContext[Any, Any]
        ) -> bytes | None:
            context = AsyncContext(grpc_context)
            try:
                call = _call_wire(method, served, grpc_context)
                argument = (
                    _decoded_async(
                        request, call.decode, grpc_context, _batch_limit(grpc_context, context) > 0
                    )
                    if client_streaming
                    else await _decode_async(call.decode, request)
                )
                reply = _check(method, await fn(argument, context))
                await context._send_own_initial()
                if call.frames:
                    _attachments.announce(grpc_context, context.trailing_metadata)
                return await _encode_async(call.encode, reply, carrying)
            except Exception as exc:
                await abort_async(grpc_context, context, exc, path)
                return None

        return unary_response

    async def stream_response(
        request: Any, grpc_context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        context = AsyncContext(grpc_context)
        try:
            call = _call_wire(method, served, grpc_context)
            if client_streaming:
                limit = _batch_limit(grpc_context, context)
                argument = _decoded_async(request, call.decode, grpc_context, limit > 0)
            else:
                data, limit = _request_of(request, grpc_context, context)
                argument = await _decode_async(call.decode, data)
            replies = _encoded_async(fn(argument, context), method, call, carrying)
            if limit:
                replies = coalesced_async(replies, limit)
            first = bool(context._initial)
            async for encoded in replies:
                if first:
                    first = False
                    await context._send_own_initial()
                yield encoded
            if call.frames:
                _attachments.announce(grpc_context, context.trailing_metadata)
        except Exception as exc:
            await abort_async(grpc_context, context, exc, path)

    return stream_response
