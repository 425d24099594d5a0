from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # grpc.aio runs on asyncio only.
    return "asyncio"
