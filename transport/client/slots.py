"""A client's bound on the unary calls it has in flight on its channel.

A gRPC server bounds the streams of one connection (the library's servers at
64) and counts a finished stream until it has freed it, so a client that keeps
the connection at the bound is refused now and then (REFUSED_STREAM). A client
that stays below it is not, and is faster too: ``python -m benchmarks.burst``
measures it (docs/reliability.md, "What a burst gets", has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections import deque

from ..errors import RpcError
from ..status import StatusCode

__all__ = ["AsyncCallSlots", "CallSlots", "check_max_calls_in_flight"]


def check_max_calls_in_flight(value: int | None) -> int | None:
    """Refuse a bound below one (``None`` means no bound)."""
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(
            f"max_calls_in_flight must be at least 1, or None for no bound; got {value!r}"
        )
    return value


def _no_slot(bound: int, timeout: float) -> RpcError:
    return RpcError(
        StatusCode.DEADLINE_EXCEEDED,
        f"the deadline ({timeout:g} s) passed while {bound} calls of this client were in flight"
        " (max_calls_in_flight); raise the bound or the timeout",
    )


class CallSlots:
    """At most ``bound`` unary calls at once across the threads of a sync client."""

    __slots__ = ("_free", "bound")

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._free: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(bound):
            self._free.put(None)

    def acquire(self, timeout: float | None) -> float | None:
        """Wait for a slot; return what is left of ``timeout`` (DEADLINE_EXCEEDED if none)."""
        try:
            self._free.get_nowait()
            return timeout
        except queue.Empty:
            pass
        started = time.monotonic()
        try:
            self._free.get(timeout=None if timeout is None else max(0.0, timeout))
        except queue.Empty:
            assert timeout is not None  # get() without a timeout never gives up
            raise _no_slot(self.bound, timeout) from None
        return None if timeout is None else max(0.0, timeout - (time.monotonic() - started))

    def release(self) -> None:
        """Give a slot back."""
        self._free.put(None)


class AsyncCallSlots:
    """At most ``bound`` unary calls at once on the event loop of an asyncio client."""

    __slots__ = ("_free", "_waiting", "bound")

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._free = bound
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def acquire(self, timeout: float | None) -> float | None:
        """Wait for a slot; return what is left of ``timeout`` (DEADLINE_EXCEEDED if none)."""
        if self._free:
            self._free -= 1
            return timeout
        started = time.monotonic()
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(granted)
        try:
            await asyncio.wait_for(granted, timeout)
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                self.release()  # handed a slot just as the wait ended: pass it on
            else:
                granted.cancel()
                with contextlib.suppress(ValueError):  # a released slot may have taken it out
                    self._waiting.remove(granted)
            if isinstance(exc, asyncio.TimeoutError) and timeout is not None:
                raise _no_slot(self.bound, timeout) from None
            raise
        return None if timeout is None else max(0.0, timeout - (time.monotonic() - started))

    def release(self) -> None:
        """Give a slot back, to the longest waiting call if any."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
