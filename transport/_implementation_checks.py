"""Refuse, at bind, an implementation method whose annotations contradict its declaration.

mypy (with ``transport.mypy_plugin``) catches the same mistakes earlier; this
check is for code nobody type-checks, so that a method annotated to return a
``dict`` or to take the wrong message fails at ``bind()``, not as INTERNAL at
its first call. Only what the annotations say for certain is judged: a missing
annotation, ``Any``, a type variable or a hint that cannot be resolved passes.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import types
import typing
from typing import Any

from .errors import DeclarationError
from .service import Method

__all__ = ["check_annotations"]

# A sync method may return a collection (grpcio iterates it); a request stream is an iterator.
_SYNC_STREAMS = (
    cabc.Iterator,
    cabc.Iterable,
    cabc.Generator,
    cabc.Collection,
    cabc.Sequence,
    list,
    tuple,
    set,
    frozenset,
)
_ASYNC_STREAMS = (cabc.AsyncIterator, cabc.AsyncIterable, cabc.AsyncGenerator)
_UNIONS: tuple[Any, ...] = (typing.Union, types.UnionType)


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a forward reference to a local class, say: nothing to judge
        return {}


def _judged(hint: Any) -> bool:
    """Whether ``hint`` names a class (not ``Any``, ``object``, a type variable...)."""
    origin = typing.get_origin(hint) or hint
    # typing.Any is a class from Python 3.11 on.
    return isinstance(origin, type) and origin not in (object, Any)


def _fits(hint: Any, message: type[Any], *, taken: bool) -> bool:
    """Whether ``hint`` can be the declared ``message`` (taken as a request, or returned)."""
    if typing.get_origin(hint) in _UNIONS:
        return any(_fits(member, message, taken=taken) for member in typing.get_args(hint))
    if not _judged(hint):
        return True
    origin = typing.get_origin(hint) or hint
    if _redefined(origin, message):
        return True
    return issubclass(message, origin) if taken else issubclass(origin, message)


def _redefined(one: type[Any], other: type[Any]) -> bool:
    """Whether two classes are one class statement run twice (a notebook cell, a reload)."""
    return (one.__module__, one.__qualname__) == (other.__module__, other.__qualname__)


def _stream(hint: Any) -> tuple[str, Any] | None:
    """``("sync" | "async", item)`` if ``hint`` is a stream, else ``None``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    for kind, origins in (("sync", _SYNC_STREAMS), ("async", _ASYNC_STREAMS)):
        if origin in origins:
            return kind, args[0] if args else Any
    return None


def _problem(
    hint: Any, message: type[Any], streaming: bool, asynchronous: bool, taken: bool
) -> str:
    """What is wrong with ``hint`` for one side of a declared method, or ``""``."""
    stream = _stream(hint)
    if streaming:
        if stream is None:
            return "one" if _judged(hint) and typing.get_origin(hint) not in _UNIONS else ""
        kind, item = stream
        if kind != ("async" if asynchronous else "sync"):
            return "sync/async"
        return "" if _fits(item, message, taken=taken) else "type"
    if stream is not None:
        return "stream"
    return "" if _fits(hint, message, taken=taken) else "type"


def _wanted(message: type[Any], streaming: bool, asynchronous: bool) -> str:
    if not streaming:
        return message.__name__
    return f"{'AsyncIterator' if asynchronous else 'Iterator'}[{message.__name__}]"


def _shown(hint: Any) -> str:
    """``hint`` as written in code, without module prefixes: ``dict[str, str]``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is not None and args and isinstance(origin, type):
        return f"{origin.__name__}[{', '.join(_shown(arg) for arg in args)}]"
    return hint.__name__ if isinstance(hint, type) else repr(hint).replace("typing.", "")


def check_annotations(
    service_name: str, methods: dict[str, Method[Any, Any]], implementation: object
) -> None:
    """Refuse an implemented method annotated against its declaration (types, streams, async)."""
    owner = type(implementation).__name__
    for method in methods.values():
        fn = getattr(implementation, method.attribute, None)
        if fn is None or isinstance(fn, Method) or not callable(fn):
            continue
        asynchronous = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
        if method.cardinality.server_streaming and inspect.iscoroutinefunction(fn):
            raise DeclarationError(
                f"{owner}.{method.attribute} is an async def that does not yield, but "
                f"{service_name}/{method.name} answers a stream: yield each reply (an async "
                "generator)"
            )
        hints = _hints(fn)
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            continue
        sides = []
        if parameters and parameters[0].name in hints:
            sides.append(("takes", hints[parameters[0].name], method.request_type, True))
        if "return" in hints:
            sides.append(("returns", hints["return"], method.response_type, False))
        for verb, hint, message, taken in sides:
            streaming = (
                method.cardinality.client_streaming
                if taken
                else method.cardinality.server_streaming
            )
            problem = _problem(hint, message, streaming, asynchronous, taken)
            if not problem:
                continue
            declared = f"{service_name}/{method.name}"
            wanted = _wanted(message, streaming, asynchronous)
            side = "takes" if taken else "answers"
            why = {
                "type": f"but {declared} {side} {message.__name__}",
                "stream": f"but {declared} {side} one message",
                "one": f"but {declared} {side} a stream",
                "sync/async": (
                    f"but it is {'async def' if asynchronous else 'def'}, so its streams are "
                    f"{'AsyncIterator' if asynchronous else 'Iterator'}"
                ),
            }[problem]
            raise DeclarationError(
                f"{owner}.{method.attribute} {verb} {_shown(hint)} {why}; annotate it "
                f"{'(request: ' + wanted + ', context)' if taken else '-> ' + wanted}"
            )
