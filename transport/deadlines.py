"""Deadlines across calls: a call made inside a handler ends no later than the handler's call.

The handlers (``transport._handlers``) run each implementation with the call
it serves recorded in a context variable: its deadline, and on a sync server
its grpcio context, to cancel what the handler started. The clients read it:
a call made while serving gets the time left of the served call as its
timeout, or its own timeout if that is shorter. A sync handler's calls are
cancelled when its own call is (an asyncio handler's task is cancelled, which
cancels the call it awaits). Outside a handler nothing changes.

A call that must outlive the one being served (work handed to a background
thread or task started with a copy of the context) runs under
:func:`detached`.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

__all__ = ["Caller", "caller", "detached", "propagating", "propagating_async"]

# grpcio reports "no deadline" as a huge number of seconds.
_NO_DEADLINE = 10**8
# A served call that ends this close to its deadline ended by it (clocks and
# timers differ by milliseconds).
_DEADLINE_MARGIN = 0.05
# Guards the calls started under each served call (held for a moment, rarely).
_CHILDREN_LOCK = threading.Lock()


class Caller:
    """The call being served: when it ends at the latest, and what to cancel with it."""

    __slots__ = ("_cancels", "_children", "_grpc")

    def __init__(self, grpc_context: Any, *, cancels: bool) -> None:
        # Read at each call made under it (cheaper than at every call served).
        self._grpc = grpc_context
        # A sync server's call, whose end cancels the calls started under it.
        self._cancels = cancels
        self._children: weakref.WeakSet[Any] | None = None

    def remaining(self) -> float | None:
        """Seconds left before the served call's deadline, or ``None`` without one."""
        left: float | None = self._grpc.time_remaining()
        if left is None or left > _NO_DEADLINE:
            return None
        return max(0.0, left)

    def timeout(self, own: float | None) -> float | None:
        """The timeout of a call made now: ``own``, or the time left here if that is shorter."""
        left = self.remaining()
        if left is None:
            return own
        return left if own is None or left < own else own

    @property
    def cancels(self) -> bool:
        """Whether calls started here must be told of a cancel (a sync handler's)."""
        return self._cancels

    def cancel_with(self, call: Any) -> None:
        """Cancel ``call`` (anything with ``cancel()``) when the served call ends."""
        if not self._cancels:
            return
        with _CHILDREN_LOCK:
            if self._children is None:
                self._children = weakref.WeakSet()
                # False once the served call has ended: nothing would call back.
                if not self._grpc.add_callback(self._cancel_children):
                    self._children = None
                    call.cancel()
                    return
            self._children.add(call)

    def _cancel_children(self) -> None:
        # The served call ended by its deadline: the calls started under it have
        # one no later, and end DEADLINE_EXCEEDED on their own, as they should.
        left = self.remaining()
        if left is not None and left <= _DEADLINE_MARGIN:
            return
        with _CHILDREN_LOCK:
            children = list(self._children or ())
        for child in children:
            child.cancel()


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "transport_caller", default=None
)


def caller() -> Caller | None:
    """The call being served where this runs, or ``None`` outside a handler (or detached)."""
    return _CALLER.get()


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Calls made inside take neither the deadline nor the cancellation of the call served."""
    token = _CALLER.set(None)
    try:
        yield
    finally:
        _CALLER.reset(token)


def propagating(fn: Callable[..., Any], streams: bool) -> Callable[..., Any]:
    """``fn``, a sync implementation, run with its call recorded as the caller of its calls."""
    if not streams:

        def unary(argument: Any, context: Any) -> Any:
            token = _CALLER.set(Caller(context._grpc, cancels=True))
            try:
                return fn(argument, context)
            finally:
                _CALLER.reset(token)

        return unary

    def streaming(argument: Any, context: Any) -> Iterator[Any]:
        # Set around each step only: the generator is suspended between them,
        # and the thread serves other calls once it ends.
        served = Caller(context._grpc, cancels=True)
        token = _CALLER.set(served)
        try:
            replies = iter(fn(argument, context))
        finally:
            _CALLER.reset(token)
        try:
            while True:
                token = _CALLER.set(served)
                try:
                    reply = next(replies)
                except StopIteration:
                    return
                finally:
                    _CALLER.reset(token)
                yield reply
        finally:
            close = getattr(replies, "close", None)
            if close is not None:
                close()

    return streaming


def propagating_async(fn: Callable[..., Any], streams: bool) -> Callable[..., Any]:
    """``fn``, an asyncio implementation, run with its call recorded as the caller of its calls."""
    if not streams:

        async def unary(argument: Any, context: Any) -> Any:
            token = _CALLER.set(Caller(context._grpc, cancels=False))
            try:
                return await fn(argument, context)
            finally:
                _CALLER.reset(token)

        return unary

    async def streaming(argument: Any, context: Any) -> AsyncIterator[Any]:
        # Set around each step only, as for a sync stream.
        served = Caller(context._grpc, cancels=False)
        token = _CALLER.set(served)
        try:
            replies = fn(argument, context).__aiter__()
        finally:
            _CALLER.reset(token)
        try:
            while True:
                token = _CALLER.set(served)
                try:
                    reply = await replies.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    _CALLER.reset(token)
                yield reply
        finally:
            close = getattr(replies, "aclose", None)
            if close is not None:
                await close()

    return streaming
