"""pytest fixtures for testing services built with ``transport`` (loaded automatically).

``transport_serve(binding, ...)`` starts a sync server on an ephemeral
127.0.0.1 port for the test and returns a :class:`~transport.testing.TestServer`
with a connected ``client``; ``transport_serve_async`` is the asyncio twin (for
tests run under anyio's pytest plugin). Servers stop when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import pytest

from .testing import AsyncTestServer, Mountable, TestServer, serve, serve_async

__all__ = ["transport_serve", "transport_serve_async"]


@pytest.fixture
def transport_serve() -> Iterator[Callable[..., TestServer]]:
    """Give a function that starts a sync test server for this test and returns it."""
    with ExitStack() as stack:

        def start(*bindings: Mountable, **options: Any) -> TestServer:
            return stack.enter_context(serve(*bindings, **options))

        yield start


@pytest.fixture
async def transport_serve_async() -> AsyncIterator[Callable[..., Awaitable[AsyncTestServer]]]:
    """Give a coroutine function that starts an asyncio test server for this test."""
    async with AsyncExitStack() as stack:

        async def start(*bindings: Mountable, **options: Any) -> AsyncTestServer:
            return await stack.enter_async_context(serve_async(*bindings, **options))

        yield start
