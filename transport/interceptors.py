"""Interceptors that see a call's decoded messages, on the server and on the client.

An interceptor is an object with one method, ``intercept(call, request,
proceed)``, that wraps the call as grpc-go's interceptors and grpclib's
middleware do: it sees what the call is (:class:`ServerCall` or
:class:`ClientCall`), gets the decoded request, calls ``proceed(request)``
for the rest of the chain (the next interceptor, then the handler or the
wire) and returns the response. Around that one call it can refuse (raise
:class:`~transport.RpcError` instead of proceeding), add metadata, time the
call, and see the error that ``proceed`` raises.

Streams are iterators in both directions: for a method that streams requests,
``request`` is the iterator of decoded requests; for one that streams
responses, ``proceed`` returns the iterator of responses (an error of the
stream is raised while iterating it). An interceptor sees each message by
wrapping the iterator in a generator of its own and returning that.

``def intercept`` serves ``grpc.server`` bindings and :class:`~transport.Client`;
``async def intercept`` serves ``grpc.aio.server`` bindings and
:class:`~transport.AsyncClient`, where ``await proceed(request)`` returns the
response (an async iterator of them for response streams) and a stream of
requests is an async iterator. A client's ``open()`` goes through the
interceptors too, its requests being the iterator of what is written.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .context import AsyncContext, Context
from .errors import DeclarationError

if TYPE_CHECKING:
    from .metadata import MetadataTuple
    from .service import Method

__all__ = [
    "ClientCall",
    "ClientInterceptor",
    "ServerCall",
    "ServerInterceptor",
    "chain",
    "check_interceptors",
]

#: ``proceed(request)``: the rest of the chain, from the interceptor's point of view.
Proceed = Callable[[Any], Any]
ContextT = TypeVar("ContextT", Context, AsyncContext)


class ServerCall(Generic[ContextT]):
    """What a server interceptor knows of a call: the method, the peer, the metadata, the context.

    ``context`` is the handler's :class:`~transport.Context` (or
    :class:`~transport.AsyncContext`: annotate ``ServerCall[AsyncContext]``
    in an ``async def intercept``): add trailing metadata with
    ``call.context.add_trailing_metadata(...)``, send initial metadata with
    ``call.context.send_initial_metadata(...)``.
    """

    __slots__ = ("context", "method")

    def __init__(self, method: Method[Any, Any], context: ContextT) -> None:
        self.method = method
        self.context: ContextT = context

    @property
    def peer(self) -> str:
        """The client's address as grpcio reports it (``ipv4:127.0.0.1:port``)."""
        return self.context.peer()

    @property
    def metadata(self) -> MetadataTuple:
        """The metadata the client sent (without the library's own entries)."""
        return self.context.invocation_metadata()

    def __repr__(self) -> str:
        return f"<ServerCall {self.method.path} from {self.peer}>"


class ClientCall:
    """What a client interceptor knows of a call, and may change before it proceeds.

    ``metadata`` and ``timeout`` are what the call will be sent with:
    assign new ones (``call.metadata = (*call.metadata, ("k", "v"))``)
    before calling ``proceed``.
    """

    __slots__ = ("metadata", "method", "target", "timeout")

    def __init__(
        self,
        method: Method[Any, Any],
        target: str,
        metadata: MetadataTuple,
        timeout: float | None,
    ) -> None:
        self.method = method
        #: The address the client connected to (``""`` for a client made from a channel).
        self.target = target
        self.metadata = metadata
        self.timeout = timeout

    @property
    def peer(self) -> str:
        """The server the call goes to: the client's target."""
        return self.target

    def __repr__(self) -> str:
        return f"<ClientCall {self.method.path} to {self.target or 'channel'}>"


class ServerInterceptor(Protocol):
    """Wraps each call of a binding: ``def`` for ``grpc.server``, ``async def`` for asyncio."""

    def intercept(self, call: ServerCall[Any], request: Any, proceed: Proceed) -> Any:
        """Return ``proceed(request)`` (awaited, for asyncio), or raise RpcError to refuse."""


class ClientInterceptor(Protocol):
    """Wraps each call of a client: ``def`` for ``Client``, ``async def`` for ``AsyncClient``."""

    def intercept(self, call: ClientCall, request: Any, proceed: Proceed) -> Any:
        """Return ``proceed(request)`` (awaited, for asyncio), or raise RpcError to refuse."""


def _is_async(interceptor: object) -> bool:
    return inspect.iscoroutinefunction(getattr(interceptor, "intercept", None))


def check_interceptors(
    interceptors: Sequence[Any] | None, asynchronous: bool, user: str
) -> tuple[Any, ...]:
    """The interceptors as a tuple; a DeclarationError for one of the other kind (or none)."""
    found = tuple(interceptors or ())
    for interceptor in found:
        if not callable(getattr(interceptor, "intercept", None)):
            raise DeclarationError(
                f"{interceptor!r} is not an interceptor: it has no intercept(call, request, "
                "proceed) method"
            )
        if _is_async(interceptor) != asynchronous:
            wanted, got = ("async def", "def") if asynchronous else ("def", "async def")
            raise DeclarationError(
                f"{type(interceptor).__name__}.intercept is {got} but {user} needs {wanted} "
                "intercept"
            )
    return found


def chain(interceptors: Sequence[Any], call: Any, last: Proceed) -> Proceed:
    """``proceed`` of the first interceptor: each calls the next, the last calls ``last``."""
    proceed = last
    for interceptor in reversed(interceptors):
        proceed = _link(interceptor.intercept, call, proceed)
    return proceed


def _link(intercept: Callable[[Any, Any, Proceed], Any], call: Any, proceed: Proceed) -> Proceed:
    return lambda request: intercept(call, request, proceed)
