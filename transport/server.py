"""Serve a declared service on any grpcio server, sync or asyncio.

:func:`bind` pairs a declaration with an implementation and builds grpcio
generic method handlers whose (de)serialisers are the identity: requests are
decoded inside the handler, where a decode error can become INVALID_ARGUMENT
(grpcio's own deserialiser hook would make it INTERNAL).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import grpc.aio

from . import _declaration_checks, _status_map
from .client.coalescing import coalesced, coalesced_async
from .context import AsyncContext, Context
from .encoding import batches as _batches
from .encoding import frames as _attachments
from .encoding.wires import JSON, CallWire, check
from .errors import DeclarationError, RpcError
from .service import Cardinality, Method, Service
from .status import StatusCode

__all__ = ["Binding", "bind"]

Handler = Callable[..., Any]


def _check(method: Method[Any, Any], reply: Any) -> Any:
    if not isinstance(reply, method.response_type):
        raise _status_map.ResponseTypeError(
            f"{method.path} returned {type(reply).__name__}, expected "
            f"{method.response_type.__name__}"
        )
    return reply


def _details_metadata(
    context: Context | AsyncContext, exc: Exception, status: tuple[StatusCode, str, bytes | None]
) -> tuple[tuple[str, str | bytes], ...]:
    trailing = context.trailing_metadata
    if isinstance(exc, RpcError):
        # Metadata carried by the error itself goes out with its status.
        trailing += exc.trailing_metadata
    return trailing + _status_map.details_metadata(*status)


def _abort_sync(
    grpc_context: grpc.ServicerContext, context: Context, exc: Exception, path: str
) -> None:
    status = _status_map.status_of(exc, path)
    grpc_context.set_trailing_metadata(_details_metadata(context, exc, status))
    grpc_context.abort(_status_map.grpc_code(status[0]), status[1])


async def _abort_async(
    grpc_context: grpc.aio.ServicerContext[Any, Any],
    context: AsyncContext,
    exc: Exception,
    path: str,
) -> None:
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


def _call_wire(method: Method[Any, Any], binding: Binding, grpc_context: Any) -> CallWire:
    """The call's wire: announced, else its first message's, else the binding's default."""
    return CallWire(
        method,
        grpc_context.invocation_metadata(),
        binding.wire,
        _attachments.negotiates(method),
    )


def _decoded(
    requests: Iterator[bytes], decode: Callable[[Any], Any], grpc_context: Any, batched: bool
) -> Iterator[Any]:
    lead = _batches.LEAD_BYTE if batched else None
    for data in requests:
        if data[:1] == lead:  # a batch of a client that this server told it reads them
            for message in _batches.unpack(data):
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
            for message in _batches.unpack(data):
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


def _sync_behavior(method: Method[Any, Any], fn: Handler, binding: Binding) -> Handler:
    path = method.path

    if method.cardinality is Cardinality.UNARY_UNARY:

        def unary_unary(data: bytes, grpc_context: grpc.ServicerContext) -> bytes | None:
            context = Context(grpc_context)
            try:
                call = _call_wire(method, binding, grpc_context)
                reply = _check(method, fn(call.decode(data), context))
                return _encode_framed(call, grpc_context, context, reply)
            except Exception as exc:
                _abort_sync(grpc_context, context, exc, path)
                return None

        return unary_unary

    if method.cardinality is Cardinality.STREAM_UNARY:

        def stream_unary(
            requests: Iterator[bytes], grpc_context: grpc.ServicerContext
        ) -> bytes | None:
            context = Context(grpc_context)
            try:
                call = _call_wire(method, binding, grpc_context)
                batched = _batch_limit(grpc_context, context) > 0
                reply = _check(
                    method, fn(_decoded(requests, call.decode, grpc_context, batched), context)
                )
                context._send_own_initial()
                return _encode_framed(call, grpc_context, context, reply)
            except Exception as exc:
                _abort_sync(grpc_context, context, exc, path)
                return None

        return stream_unary

    client_streaming = method.cardinality.client_streaming

    def streaming(request: Any, grpc_context: grpc.ServicerContext) -> Iterator[bytes]:
        context = Context(grpc_context)
        try:
            call = _call_wire(method, binding, grpc_context)
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
            _abort_sync(grpc_context, context, exc, path)

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


def _async_behavior(method: Method[Any, Any], fn: Handler, binding: Binding) -> Handler:
    path = method.path
    client_streaming = method.cardinality.client_streaming
    carrying = method.response_codec.contents.buffers  # replies that may be large to encode

    if not method.cardinality.server_streaming:

        async def unary_response(
            request: Any, grpc_context: grpc.aio.ServicerContext[Any, Any]
        ) -> bytes | None:
            context = AsyncContext(grpc_context)
            try:
                call = _call_wire(method, binding, grpc_context)
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
                await _abort_async(grpc_context, context, exc, path)
                return None

        return unary_response

    async def stream_response(
        request: Any, grpc_context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        context = AsyncContext(grpc_context)
        try:
            call = _call_wire(method, binding, grpc_context)
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
            await _abort_async(grpc_context, context, exc, path)

    return stream_response


def _is_async(fn: Handler) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _adapt_arity(fn: Handler, qualname: str) -> Handler:
    """Let an implementation take ``(request)`` or ``(request, context)``."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters) or len(positional) >= 2:
        return fn
    if len(positional) == 1:
        if inspect.isasyncgenfunction(fn) or not _is_async(fn):
            return lambda request, context: fn(request)

        async def call(request: Any, context: Any) -> Any:
            return await fn(request)

        return call
    raise DeclarationError(f"{qualname} must accept (request) or (request, context)")


def _unimplemented(method: Method[Any, Any], asynchronous: bool) -> Handler:
    message = f"method {method.name} is not implemented"

    def fail(request: Any, context: Any) -> Any:
        raise RpcError(StatusCode.UNIMPLEMENTED, message)

    if not asynchronous:
        return fail
    if method.cardinality.server_streaming:

        async def fail_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            raise RpcError(StatusCode.UNIMPLEMENTED, message)
            yield  # pragma: no cover - makes this an async generator

        return fail_stream

    async def fail_async(request: Any, context: Any) -> Any:
        raise RpcError(StatusCode.UNIMPLEMENTED, message)

    return fail_async


_HANDLER_FACTORIES: dict[Cardinality, Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    Cardinality.UNARY_UNARY: grpc.unary_unary_rpc_method_handler,
    Cardinality.UNARY_STREAM: grpc.unary_stream_rpc_method_handler,
    Cardinality.STREAM_UNARY: grpc.stream_unary_rpc_method_handler,
    Cardinality.STREAM_STREAM: grpc.stream_stream_rpc_method_handler,
}


class Binding:
    """A declaration bound to its implementation, ready to mount on grpcio servers."""

    def __init__(self, service: type[object], implementation: object, *, wire: str = JSON) -> None:
        #: The wire of calls that announce none and send no request before the
        #: first answer (server-first streams, empty request streams).
        self.wire = check(wire)
        if not (isinstance(service, type) and Service in service.__mro__):
            raise DeclarationError(f"{service!r} is not a Service declaration")
        # type[object], not type[Service]: declarations are protocols, which mypy
        # will not pass where a concrete type[Service] is expected.
        self.service: type[Service] = service  # type: ignore[assignment]
        self.implementation = implementation
        owner = type(implementation).__name__
        functions: dict[str, Handler | None] = {}
        for name, method in self.service.methods().items():
            fn = getattr(implementation, method.attribute, None)
            if isinstance(fn, Method):  # a subclass of the declaration that left it out
                fn = None
            if fn is not None and not callable(fn):
                raise DeclarationError(f"{owner}.{method.attribute} is not callable")
            functions[name] = fn
        _declaration_checks.check_implementation(
            self.service.service_name(),
            {name: method.attribute for name, method in self.service.methods().items()},
            implementation,
            [self.service.methods()[name].attribute for name, fn in functions.items() if fn],
        )
        kinds = {_is_async(fn) for fn in functions.values() if fn is not None}
        if len(kinds) > 1:
            raise DeclarationError(
                f"{owner} mixes async and sync methods; an implementation is served either "
                "on grpc.server (def) or on grpc.aio.server (async def)"
            )
        self.asynchronous = kinds == {True}
        make = _async_behavior if self.asynchronous else _sync_behavior
        behaviors: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for name, method in self.service.methods().items():
            fn = functions[name]
            handler = (
                _adapt_arity(fn, f"{owner}.{name}")
                if fn is not None
                else _unimplemented(method, self.asynchronous)
            )
            behaviors[name] = _HANDLER_FACTORIES[method.cardinality](make(method, handler, self))
        self.handler: grpc.GenericRpcHandler = grpc.method_handlers_generic_handler(
            self.service.service_name(), behaviors
        )

    def add_to(self, server: grpc.Server | grpc.aio.Server) -> None:
        """Mount the service on ``server`` (check that its kind matches the implementation)."""
        is_aio = isinstance(server, grpc.aio.Server)
        if is_aio != self.asynchronous:
            wanted = (
                "grpc.aio.server (async def methods)"
                if self.asynchronous
                else ("grpc.server (def methods)")
            )
            raise DeclarationError(
                f"{type(self.implementation).__name__} must be served on {wanted}"
            )
        server.add_generic_rpc_handlers((self.handler,))

    def __repr__(self) -> str:
        return f"<Binding {self.service.service_name()} -> {type(self.implementation).__name__}>"


def bind(service: type[object], implementation: object, *, wire: str = JSON) -> Binding:
    """Pair a declaration with an object whose methods implement it.

    Each implementation method takes ``(request, context)`` (or just
    ``(request)``) and is either all ``def`` (for ``grpc.server``) or all
    ``async def`` (for ``grpc.aio.server``). A declared method the object does
    not implement answers UNIMPLEMENTED.

    Each call answers in the wire it was spoken in (JSON or protobuf); ``wire``
    is the default for calls that have not said which (``"json"`` or
    ``"protobuf"``: see :mod:`transport.encoding.wires`).
    """
    return Binding(service, implementation, wire=wire)
