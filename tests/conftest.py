from __future__ import annotations

from collections.abc import AsyncIterator

import pytest


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


@pytest.fixture(params=["json", "protobuf"])
def client_wire(request: pytest.FixtureRequest) -> str:
    """Each wire in turn: the seeds' behaviour tests run over JSON and over protobuf."""
    return str(request.param)
