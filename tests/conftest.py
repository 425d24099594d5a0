from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import pytest

from transport.testing import AsyncTestServer, Mountable, TestServer, serve, serve_async


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # grpc.aio runs on asyncio only.
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
async def one_event_loop(anyio_backend: str) -> AsyncIterator[None]:
    """Keep one event loop for every async test of the session.

    grpc.aio's completion-queue poller can deliver a late event of an earlier
    test's call after that test's loop has closed ("Event loop is closed",
    reported into whichever test runs next); with one loop for the session
    there is no closed loop to deliver to.
    """
    yield


# The modules whose streams run both ways: coalesced (the default) and one
# message per gRPC message (clients made with ``coalesce=False``).
BOTH_WAYS = {"test_server_sync", "test_server_async", "test_deadlines", "test_errors"}
BOTH_WAYS |= {"test_limits_core", "test_coalescing"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rpartition(".")[2]
    if "coalesce" in metafunc.fixturenames and module in BOTH_WAYS:
        metafunc.parametrize("coalesce", [True, False], ids=["coalesced", "one-by-one"])


@pytest.fixture
def coalesce() -> bool:
    """Whether the test clients coalesce their streams (both ways in BOTH_WAYS modules)."""
    return True


def _with_coalesce(options: dict[str, Any], coalesce: bool) -> dict[str, Any]:
    client_options = {"coalesce": coalesce, **options.get("client_options", {})}
    return {**options, "client_options": client_options}


@pytest.fixture
def transport_serve(coalesce: bool) -> Iterator[Callable[..., TestServer]]:
    """The plugin's fixture, with clients that coalesce streams or not."""
    with ExitStack() as stack:

        def start(*bindings: Mountable, **options: Any) -> TestServer:
            return stack.enter_context(serve(*bindings, **_with_coalesce(options, coalesce)))

        yield start


@pytest.fixture
async def transport_serve_async(
    coalesce: bool,
) -> AsyncIterator[Callable[..., Awaitable[AsyncTestServer]]]:
    """The plugin's asyncio fixture, with clients that coalesce streams or not."""
    async with AsyncExitStack() as stack:

        async def start(*bindings: Mountable, **options: Any) -> AsyncTestServer:
            options = _with_coalesce(options, coalesce)
            return await stack.enter_async_context(serve_async(*bindings, **options))

        yield start


@pytest.fixture(params=["json", "protobuf"])
def client_wire(request: pytest.FixtureRequest) -> str:
    """Each wire in turn: the seeds' behaviour tests run over JSON and over protobuf."""
    return str(request.param)
