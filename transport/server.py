"""Serve a declared service on any grpcio server, sync or asyncio.

:func:`bind` pairs a declaration with an implementation and builds grpcio
generic method handlers whose (de)serialisers are the identity: requests are
decoded inside the handler, where a decode error can become INVALID_ARGUMENT
(grpcio's own deserialiser hook would make it INTERNAL).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import grpc.aio

from . import _declaration_checks, _implementation_checks
from ._handlers import Handler, async_behavior, sync_behavior
from .encoding.wires import JSON, PROTOBUF, check
from .errors import DeclarationError, RpcError
from .interceptors import ServerCall, ServerInterceptor, chain, check_interceptors
from .service import Cardinality, Method, Service
from .status import StatusCode

__all__ = ["Binding", "bind"]


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


def _intercepted(
    method: Method[Any, Any],
    fn: Handler,
    interceptors: tuple[ServerInterceptor, ...],
    asynchronous: bool,
) -> Handler:
    """``fn`` wrapped by ``interceptors``; ``fn`` itself without any (no cost per call)."""
    if not interceptors:
        return fn
    if not asynchronous:

        def intercepted(request: Any, context: Any) -> Any:
            return chain(interceptors, ServerCall(method, context), lambda r: fn(r, context))(
                request
            )

        return intercepted
    if method.cardinality.server_streaming:

        async def intercepted_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            async def last(argument: Any) -> Any:
                return fn(argument, context)  # the async iterator of responses

            call = ServerCall(method, context)
            async for reply in await chain(interceptors, call, last)(request):
                yield reply

        return intercepted_stream

    async def intercepted_async(request: Any, context: Any) -> Any:
        async def last(argument: Any) -> Any:
            return await fn(argument, context)

        return await chain(interceptors, ServerCall(method, context), last)(request)

    return intercepted_async


_HANDLER_FACTORIES: dict[Cardinality, Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    Cardinality.UNARY_UNARY: grpc.unary_unary_rpc_method_handler,
    Cardinality.UNARY_STREAM: grpc.unary_stream_rpc_method_handler,
    Cardinality.STREAM_UNARY: grpc.stream_unary_rpc_method_handler,
    Cardinality.STREAM_STREAM: grpc.stream_stream_rpc_method_handler,
}


class Binding:
    """A declaration bound to its implementation, ready to mount on grpcio servers."""

    def __init__(
        self,
        service: type[object],
        implementation: object,
        *,
        wire: str = JSON,
        interceptors: Sequence[ServerInterceptor] = (),
    ) -> None:
        if not (isinstance(service, type) and Service in service.__mro__):
            raise DeclarationError(f"{service!r} is not a Service declaration")
        # type[object], not type[Service]: declarations are protocols, which mypy
        # will not pass where a concrete type[Service] is expected.
        self.service: type[Service] = service  # type: ignore[assignment]
        self.wire = wire
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
        self._handlers: dict[str, Handler] = {
            name: (
                _adapt_arity(fn, f"{owner}.{name}")
                if (fn := functions[name]) is not None
                else _unimplemented(method, self.asynchronous)
            )
            for name, method in self.service.methods().items()
        }
        self.interceptors = interceptors

    @property
    def interceptors(self) -> tuple[ServerInterceptor, ...]:
        """What wraps each call, outermost first (set before :meth:`add_to`)."""
        return self._interceptors

    @interceptors.setter
    def interceptors(self, interceptors: Sequence[ServerInterceptor]) -> None:
        self._interceptors = check_interceptors(
            interceptors, self.asynchronous, f"{type(self.implementation).__name__}'s binding"
        )
        make = async_behavior if self.asynchronous else sync_behavior
        behaviors: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for name, method in self.service.methods().items():
            handler = _intercepted(
                method, self._handlers[name], self._interceptors, self.asynchronous
            )
            behaviors[name] = _HANDLER_FACTORIES[method.cardinality](make(method, handler, self))
        self.handler: grpc.GenericRpcHandler = grpc.method_handlers_generic_handler(
            self.service.service_name(), behaviors
        )

    @property
    def wire(self) -> str:
        """The wire of calls that announce none and send no request before the first answer.

        Server-first streams and empty request streams; set it to ``"json"`` or
        ``"protobuf"`` (refused for a JSON-only declaration).
        """
        return self._wire

    @wire.setter
    def wire(self, wire: str) -> None:
        wire = check(wire)
        if wire == PROTOBUF:
            _declaration_checks.check_protobuf_wire(self.service)
        self._wire = wire

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


def bind(
    service: type[object],
    implementation: object,
    *,
    wire: str = JSON,
    interceptors: Sequence[ServerInterceptor] = (),
) -> Binding:
    """Pair a declaration with an object whose methods implement it.

    Each implementation method takes ``(request, context)`` (or just
    ``(request)``) and is either all ``def`` (for ``grpc.server``) or all
    ``async def`` (for ``grpc.aio.server``). A declared method the object does
    not implement answers UNIMPLEMENTED.

    Each call answers in the wire it was spoken in (JSON or protobuf); ``wire``
    is the default for calls that have not said which (``"json"`` or
    ``"protobuf"``: see :mod:`transport.encoding.wires`).

    A method annotated against its declaration (another message type, a
    stream where one message is declared, ``Iterator`` in an ``async def``) is
    a :class:`~transport.DeclarationError` here; with ``transport.mypy_plugin``
    in mypy's plugins, mypy refuses it before the code runs.

    ``interceptors`` wrap every call, outermost first, and see its decoded
    messages (:mod:`transport.interceptors`): ``def intercept`` for a ``def``
    implementation, ``async def intercept`` for an ``async def`` one.
    """
    binding = Binding(service, implementation, wire=wire, interceptors=interceptors)
    _implementation_checks.check_annotations(
        binding.service.service_name(), binding.service.methods(), implementation
    )
    return binding
