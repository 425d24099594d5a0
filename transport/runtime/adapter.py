"""Call a backend from the event loop, whether its methods are sync or async.

Async methods are awaited on the loop. Sync ones run on the server's worker
threads; a call cancelled meanwhile (the client went away, a deadline passed)
still waits for its thread before it unwinds, so the session is never closed,
or used again, while a backend call on it is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from .contract import Arrays, Inputs, ModelInfo, Session

__all__ = ["DEFAULT_MAX_WORKERS", "OpenedSession", "Workers"]

#: Threads a server runs sync backend calls on, unless configured otherwise.
DEFAULT_MAX_WORKERS = 32

T = TypeVar("T")
_DONE = object()


class Workers:
    """The threads that sync backend methods run on (started on first use)."""

    def __init__(self, max_workers: int = DEFAULT_MAX_WORKERS) -> None:
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread; if cancelled, wait for it before re-raising."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, "transport-runtime")
        work = self._pool.submit(fn, *args)
        try:
            # Awaited directly (no shield: one loop turn fewer per call). A cancel
            # cancels the work only if it has not started; running work is
            # waited for below, through a fresh future of the same work.
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            while not work.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({asyncio.wrap_future(work)})
            if not work.cancelled():
                work.exception()  # retrieved: the cancel is what the caller sees
            raise

    def adapt(self, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """``fn`` as a coroutine function: itself if async, else run on a worker thread."""
        if inspect.iscoroutinefunction(fn):
            return fn
        return partial(self.run, fn)

    def shutdown(self) -> None:
        """Let the threads end once idle (calls still running finish)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class OpenedSession:
    """A backend session with its methods adapted to the event loop once, at open."""

    __slots__ = ("_workers", "close", "infer", "info", "session")

    def __init__(self, session: Session, info: ModelInfo, workers: Workers) -> None:
        self.session = session
        self.info = info
        self._workers = workers
        self.infer: Callable[[Inputs], Awaitable[Arrays]] = workers.adapt(session.infer)
        self.close: Callable[[], Awaitable[None]] = workers.adapt(session.close)

    async def generate(self, prompt: str, max_tokens: int) -> AsyncGenerator[str, None]:
        """The text pieces of the backend's ``generate``, sync or async."""
        generate: Callable[..., Any] = self.session.generate
        if inspect.isasyncgenfunction(generate):
            pieces = generate(prompt, max_tokens)
            try:
                async for piece in pieces:
                    yield piece
            finally:
                await pieces.aclose()
            return
        if inspect.iscoroutinefunction(generate):
            async for piece in await generate(prompt, max_tokens):
                yield piece
            return
        run = self._workers.run
        iterator = await run(lambda: iter(generate(prompt, max_tokens)))
        try:
            while (piece := await run(next, iterator, _DONE)) is not _DONE:
                yield piece
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                await run(close)
