"""Service declarations: one Python class per gRPC service, no .proto.

A declaration names the service with its full gRPC name and lists its methods
as typed stubs. The call kind of each method follows from the type hints: a
parameter typed ``Iterator[...]``/``AsyncIterator[...]`` makes the request side
a stream, a return typed that way makes the response side a stream::

    class Greeter(Service, Protocol, name="helloworld.Greeter"):
        @rpc
        def SayHello(self, request: HelloRequest) -> HelloReply: ...

        @rpc
        def Chat(self, requests: Iterator[Note]) -> Iterator[Note]: ...

``Greeter.SayHello`` is then a typed method handle (``UnaryUnary[HelloRequest,
HelloReply]``) that servers and clients share.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import functools
import inspect
import sys
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, overload

import msgspec

from . import _declaration_checks
from .encoding.json_codec import JsonCodec
from .errors import DeclarationError

if TYPE_CHECKING:
    from .encoding.protobuf import ProtobufCodec

__all__ = [
    "Cardinality",
    "Method",
    "Service",
    "StreamStream",
    "StreamUnary",
    "UnaryStream",
    "UnaryUnary",
    "rpc",
]

Req = TypeVar("Req")
Res = TypeVar("Res")
# A handle consumes requests and produces responses.
ReqIn = TypeVar("ReqIn", contravariant=True)
ResOut = TypeVar("ResOut", covariant=True)

_STREAM_ORIGINS = (
    cabc.Iterator,
    cabc.Iterable,
    cabc.Generator,
    cabc.AsyncIterator,
    cabc.AsyncIterable,
    cabc.AsyncGenerator,
)


class Cardinality(enum.Enum):
    """The four call kinds, as ``(client_streaming, server_streaming)``."""

    UNARY_UNARY = (False, False)
    UNARY_STREAM = (False, True)
    STREAM_UNARY = (True, False)
    STREAM_STREAM = (True, True)

    @property
    def client_streaming(self) -> bool:
        """Whether the client sends a stream of requests."""
        return self.value[0]

    @property
    def server_streaming(self) -> bool:
        """Whether the server sends a stream of responses."""
        return self.value[1]


class Method(Generic[ReqIn, ResOut]):
    """A declared method: its name, message types, call kind and codecs.

    Handles are made by :func:`rpc`; the subclass says the call kind so a typed
    client can tell what a call returns.
    """

    cardinality: ClassVar[Cardinality]

    def __init__(
        self, name: str | None, request_type: type[ReqIn], response_type: type[ResOut]
    ) -> None:
        self.name = name or ""
        self.service_name = ""
        self.request_type = request_type
        self.response_type = response_type
        # Built once per declaration, never per call.
        self.request_codec: JsonCodec[Any] = JsonCodec(request_type)
        self.response_codec: JsonCodec[Any] = JsonCodec(response_type)
        self._protobuf: tuple[ProtobufCodec[Any], ProtobufCodec[Any]] | bool | None = False

    def protobuf_codecs(self) -> tuple[ProtobufCodec[Any], ProtobufCodec[Any]] | None:
        """The protobuf ``(request, response)`` codecs, built on first use; ``None`` if JSON-only.

        Only messages whose every field has a :class:`~transport.encoding.protobuf.Number`
        travel as protobuf; a method without numbers speaks JSON only (a method
        numbered in part was refused when it was declared).
        """
        found = self._protobuf
        if found is False:
            from .encoding.protobuf import (  # the protobuf tables load lazily
                ProtobufCodec,
                is_numbered,
            )

            numbered = is_numbered(self.request_type) and is_numbered(self.response_type)
            found = self._protobuf = (
                (ProtobufCodec(self.request_type), ProtobufCodec(self.response_type))
                if numbered
                else None
            )
        return found  # type: ignore[return-value]

    def __set_name__(self, owner: type[Any], attribute: str) -> None:
        if not self.name:
            self.name = attribute
        self.attribute = attribute

    @property
    def path(self) -> str:
        """The HTTP/2 path of the method: ``/package.Service/Method``."""
        return f"/{self.service_name}/{self.name}"

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.path} "
            f"{self.request_type.__name__} -> {self.response_type.__name__}>"
        )


class UnaryUnary(Method[ReqIn, ResOut]):
    """One request, one response."""

    cardinality = Cardinality.UNARY_UNARY


class UnaryStream(Method[ReqIn, ResOut]):
    """One request, a stream of responses."""

    cardinality = Cardinality.UNARY_STREAM


class StreamUnary(Method[ReqIn, ResOut]):
    """A stream of requests, one response."""

    cardinality = Cardinality.STREAM_UNARY


class StreamStream(Method[ReqIn, ResOut]):
    """A stream of requests and a stream of responses (bidirectional)."""

    cardinality = Cardinality.STREAM_STREAM


_KINDS: dict[Cardinality, type[Method[Any, Any]]] = {
    kind.cardinality: kind for kind in (UnaryUnary, UnaryStream, StreamUnary, StreamStream)
}


def _stream_item(hint: Any, where: str) -> tuple[bool, Any]:
    """Return ``(is_stream, item_type)`` for a parameter or return hint."""
    origin = typing.get_origin(hint) or hint
    if origin in _STREAM_ORIGINS:
        args = typing.get_args(hint)
        if not args:
            raise DeclarationError(f"{where}: {hint!r} needs an item type, e.g. Iterator[Point]")
        return True, args[0]
    return False, hint


def _resolve_hints(fn: Callable[..., Any], localns: dict[str, Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, localns=localns)
    except NameError as exc:
        raise DeclarationError(
            f"cannot resolve the type hints of {fn.__qualname__}: {exc}; declare message "
            "types before the service"
        ) from None


def _method_from_stub(
    fn: Callable[..., Any], name: str | None, localns: dict[str, Any]
) -> Method[Any, Any]:
    hints = _resolve_hints(fn, localns)
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    if len(params) != 1 or params[0].name not in hints or "return" not in hints:
        raise DeclarationError(
            f"{fn.__qualname__} must be declared as (self, request: Type) -> Type with both "
            "hints present"
        )
    client_streaming, request_type = _stream_item(hints[params[0].name], fn.__qualname__)
    response_hint = hints["return"]
    if inspect.iscoroutinefunction(fn) and typing.get_origin(response_hint) in (
        cabc.Awaitable,
        cabc.Coroutine,
    ):
        response_hint = typing.get_args(response_hint)[-1]
    server_streaming, response_type = _stream_item(response_hint, fn.__qualname__)
    for label, message_type in (("request", request_type), ("response", response_type)):
        if not _is_message_class(message_type):
            raise DeclarationError(
                f"{fn.__qualname__}: the {label} type must be a message class (a "
                f"msgspec.Struct or a dataclass), got {message_type!r}"
                + _declaration_checks.stream_hint(message_type)
            )
    kind = _KINDS[Cardinality((client_streaming, server_streaming))]
    try:
        method = kind(name, request_type, response_type)
    except TypeError as exc:  # msgspec cannot build a codec for a field type
        raise DeclarationError(f"{fn.__qualname__}: {exc}") from None
    for message_type in (request_type, response_type):
        _declaration_checks.check_message_fields(message_type, fn.__qualname__)
    _declaration_checks.check_numbering(fn.__qualname__, request_type, response_type)
    return method


def _is_message_class(candidate: Any) -> bool:
    """A class that travels as a JSON object, as every proto3 message does."""
    return isinstance(candidate, type) and (
        issubclass(candidate, msgspec.Struct)
        or dataclasses.is_dataclass(candidate)
        or hasattr(candidate, "__attrs_attrs__")
    )


def _caller_namespace(depth: int) -> dict[str, Any]:
    """Names visible where the declaration is written (class body and enclosing function)."""
    namespace: dict[str, Any] = {}
    frame = sys._getframe(depth + 1)
    for _ in range(2):
        if frame is None:
            break
        for key, value in frame.f_locals.items():
            namespace.setdefault(key, value)
        frame = frame.f_back  # type: ignore[assignment]
    return namespace


class _Declare(Protocol):
    """The type of :func:`rpc`: each stub shape gives a handle of its kind and message types.

    Item and message types cannot both match one shape because message types
    are classes that are not iterators. ``rpc(name=...)`` gives the same
    decorator, so a renamed method is as typed as any other.
    """

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[Any, Iterator[Req]], Iterator[Res]], /
    ) -> StreamStream[Req, Res]: ...
    @overload
    def __call__(
        self, fn: Callable[[Any, AsyncIterator[Req]], AsyncIterator[Res]], /
    ) -> StreamStream[Req, Res]: ...
    @overload
    def __call__(self, fn: Callable[[Any, Iterator[Req]], Res], /) -> StreamUnary[Req, Res]: ...
    @overload
    def __call__(
        self, fn: Callable[[Any, AsyncIterator[Req]], Awaitable[Res]], /
    ) -> StreamUnary[Req, Res]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[Any, Req], Iterator[Res]], /
    ) -> UnaryStream[Req, Res]: ...
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[[Any, Req], AsyncIterator[Res]], /
    ) -> UnaryStream[Req, Res]: ...
    @overload
    def __call__(self, fn: Callable[[Any, Req], Awaitable[Res]], /) -> UnaryUnary[Req, Res]: ...
    @overload
    def __call__(self, fn: Callable[[Any, Req], Res], /) -> UnaryUnary[Req, Res]: ...
    @overload
    def __call__(self, *, name: str) -> _Declare: ...


def _rpc(fn: Callable[..., Any] | None = None, /, *, name: str | None = None) -> Any:
    """Declare a method of a :class:`Service` from a typed stub.

    ``@rpc`` uses the Python name as the gRPC method name; ``@rpc(name="X")``
    sets it explicitly (a name that is not a valid identifier, say).
    """
    if fn is None:
        if not name:
            raise DeclarationError("rpc(name=...) needs a non-empty method name")
        return functools.partial(_named, name)
    return _method_from_stub(fn, name, _caller_namespace(1))


def _named(name: str, fn: Callable[..., Any]) -> Method[Any, Any]:
    return _method_from_stub(fn, name, _caller_namespace(1))


rpc: _Declare = _rpc


if TYPE_CHECKING:
    from abc import ABCMeta as _ProtocolMeta
else:
    _ProtocolMeta = type(Protocol)


class _ServiceMeta(_ProtocolMeta):
    """Takes a declaration's ``name=`` before ``Protocol``'s metaclass sees it.

    On Python 3.10 ``ABCMeta.__new__`` has its own ``name`` parameter (not
    positional-only), so ``class X(Service, Protocol, name=...)`` would bind
    ``name`` twice. The service name travels in the class namespace instead.
    """

    def __new__(
        mcls,
        cls_name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        /,
        name: str | None = None,
        **kwargs: Any,
    ) -> _ServiceMeta:
        if name is not None:
            namespace = {**namespace, "__service_name__": name}
        return super().__new__(mcls, cls_name, bases, namespace, **kwargs)


class Service(Protocol, metaclass=_ServiceMeta):
    """Base of a service declaration; subclass with ``name="package.Service"``.

    A declaration is an interface: list ``Protocol`` among its bases too
    (``class Greeter(Service, Protocol, name=...)``) so that type checkers accept
    the ``...`` bodies of its stubs.
    """

    __service_name__: ClassVar[str] = ""
    __methods__: ClassVar[dict[str, Method[Any, Any]]] = {}

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declaration_checks.check_declaration_class(cls, Method)
        service_name = name if name is not None else (cls.__service_name__ or cls.__name__)
        if not service_name or "/" in service_name:
            raise DeclarationError(
                f"{cls.__qualname__}: a service needs a full gRPC name without '/', got "
                f"{service_name!r}"
            )
        methods: dict[str, Method[Any, Any]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, Method):
                    methods[value.name] = value
        if not methods:
            raise DeclarationError(f"{cls.__qualname__} declares no @rpc methods")
        for method in methods.values():
            if method.service_name and method.service_name != service_name:
                # An inherited handle belongs to its own service; give this one a copy.
                method = _copy(method)
                setattr(cls, method.attribute, method)
            method.service_name = service_name
            methods[method.name] = method
        cls.__service_name__ = service_name
        cls.__methods__ = methods

    @classmethod
    def methods(cls) -> dict[str, Method[Any, Any]]:
        """The declared methods by gRPC method name."""
        return dict(cls.__methods__)

    @classmethod
    def service_name(cls) -> str:
        """The full gRPC name of the service."""
        return cls.__service_name__


def _copy(method: Method[Req, Res]) -> Method[Req, Res]:
    clone = type(method)(method.name, method.request_type, method.response_type)
    clone.attribute = method.attribute
    return clone
