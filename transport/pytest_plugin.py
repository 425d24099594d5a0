"""pytest fixtures for testing services built with ``transport`` (loaded automatically).

``transport_serve(binding, ...)`` starts a sync server on an ephemeral
127.0.0.1 port for the test and returns a :class:`~transport.testing.TestServer`
with a connected ``client``; ``transport_serve_async`` is the asyncio twin, an
async fixture: run its tests under anyio's pytest plugin
(``@pytest.mark.anyio`` and an ``anyio_backend`` fixture returning
``"asyncio"``) or under pytest-asyncio in auto mode (``asyncio_mode =
"auto"``). Servers stop when the test ends. Annotate the fixtures with
:class:`~transport.testing.Serve` and :class:`~transport.testing.ServeAsync`.

Under pytest, grpc core's INFO lines (``Got goaway`` when a server stops under
a client) stay out of the output, as on the command line
(:mod:`transport._quiet`); set ``GRPC_VERBOSITY=INFO`` to see them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import pytest

from .testing import AsyncTestServer, Mountable, Serve, ServeAsync, TestServer, serve, serve_async

__all__ = ["transport_serve", "transport_serve_async"]

_ASYNC_FIXTURE_HELP = """\
{test} requested transport_serve_async, an async fixture, but no async plugin runs this test.
Add one of:
  - anyio (installed with transport): mark the test @pytest.mark.anyio and, in conftest.py,
        @pytest.fixture
        def anyio_backend() -> str:
            return "asyncio"
  - pytest-asyncio: set asyncio_mode = "auto" in your pytest configuration
    (its strict mode runs only fixtures declared with @pytest_asyncio.fixture);
or serve inside the test: async with transport.testing.serve_async(binding) as server: ..."""


@pytest.fixture
def transport_serve() -> Iterator[Serve]:
    """Give a function that starts a sync test server for this test and returns it."""
    with ExitStack() as stack:

        def start(*bindings: Mountable, **options: Any) -> TestServer:
            return stack.enter_context(serve(*bindings, **options))

        yield start


@pytest.fixture
async def transport_serve_async() -> AsyncIterator[ServeAsync]:
    """Give a coroutine function that starts an asyncio test server for this test."""
    async with AsyncExitStack() as stack:

        async def start(*bindings: Mountable, **options: Any) -> AsyncTestServer:
            return await stack.enter_async_context(serve_async(*bindings, **options))

        yield start


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """Say what to add when nothing will run ``transport_serve_async`` (pytest's own is vague)."""
    if (
        fixturedef.argname == "transport_serve_async"
        and inspect.isasyncgenfunction(fixturedef.func)  # pytest-asyncio's auto mode wraps it
        and "anyio_backend" not in request.fixturenames  # anyio's plugin runs it
    ):
        pytest.fail(_ASYNC_FIXTURE_HELP.format(test=request.node.name), pytrace=False)
