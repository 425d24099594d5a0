"""One server interceptor that watches calls for the metrics and the access log.

A :class:`Watcher` is told when a call starts and gets back an
:class:`Observation` of that call, which is told of each message received and
sent and of the status the call ends with. :func:`watching` makes the
interceptor (``def`` or ``async def``) that drives it on all four call kinds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import grpc

from .errors import DecodeError, DecodeLimitError, RpcError
from .interceptors import Proceed, ServerCall
from .status import StatusCode

__all__ = ["Observation", "Watcher", "code_of", "watching"]


class Observation(Protocol):
    """One call as it goes: its messages, then its end."""

    def received(self) -> None:
        """The handler got one request."""

    def sent(self) -> None:
        """The handler produced one response."""

    def end(self, code: StatusCode) -> None:
        """The call ended with ``code``."""


class Watcher(Protocol):
    """What watches the calls of a binding."""

    def begin(self, call: ServerCall[Any]) -> Observation:
        """A call started: the observation of it."""


def code_of(exc: BaseException) -> StatusCode:
    """The status a handler's exception ends its call with.

    As ``transport._status_map.status_of`` decides it, without its logging
    (that happens once, when the call is answered).
    """
    if isinstance(exc, RpcError):
        return exc.code
    if isinstance(exc, DecodeLimitError):
        return StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, DecodeError):
        return StatusCode.INVALID_ARGUMENT
    if isinstance(exc, (grpc.RpcError, GeneratorExit, asyncio.CancelledError)):
        return StatusCode.CANCELLED  # the client went away, or cancelled
    return StatusCode.UNKNOWN


def watching(watcher: Watcher, asynchronous: bool) -> Any:
    """A server interceptor driving ``watcher``: ``async def intercept`` if ``asynchronous``."""
    return _AsyncWatching(watcher) if asynchronous else _Watching(watcher)


class _Watching:
    """The ``def`` interceptor, for ``grpc.server`` bindings."""

    __slots__ = ("_watcher",)

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def intercept(self, call: ServerCall[Any], request: Any, proceed: Proceed) -> Any:
        """Tell the watcher of the call, its messages and its end."""
        seen = self._watcher.begin(call)
        kind = call.method.cardinality
        if kind.client_streaming:
            request = _received(request, seen)
        else:
            seen.received()
        try:
            response = proceed(request)
        except BaseException as exc:
            seen.end(code_of(exc))
            raise
        if kind.server_streaming:
            return _sent(response, seen)
        seen.sent()
        seen.end(StatusCode.OK)
        return response


def _received(requests: Iterator[Any], seen: Observation) -> Iterator[Any]:
    for request in requests:
        seen.received()
        yield request


def _sent(responses: Iterator[Any], seen: Observation) -> Iterator[Any]:
    code = StatusCode.OK
    try:
        for response in responses:
            seen.sent()
            yield response
    except BaseException as exc:
        code = code_of(exc)
        raise
    finally:
        seen.end(code)


class _AsyncWatching:
    """The ``async def`` interceptor, for ``grpc.aio.server`` bindings."""

    __slots__ = ("_watcher",)

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    async def intercept(self, call: ServerCall[Any], request: Any, proceed: Proceed) -> Any:
        """Tell the watcher of the call, its messages and its end."""
        seen = self._watcher.begin(call)
        kind = call.method.cardinality
        if kind.client_streaming:
            request = _received_async(request, seen)
        else:
            seen.received()
        try:
            response = await proceed(request)
        except BaseException as exc:
            seen.end(code_of(exc))
            raise
        if kind.server_streaming:
            return _sent_async(response, seen)
        seen.sent()
        seen.end(StatusCode.OK)
        return response


async def _received_async(requests: AsyncIterator[Any], seen: Observation) -> AsyncIterator[Any]:
    async for request in requests:
        seen.received()
        yield request


async def _sent_async(responses: AsyncIterator[Any], seen: Observation) -> AsyncIterator[Any]:
    code = StatusCode.OK
    try:
        async for response in responses:
            seen.sent()
            yield response
    except BaseException as exc:
        code = code_of(exc)
        raise
    finally:
        seen.end(code)
