"""The asyncio client reports the server's status when a write races the call's end."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import pytest

from transport import AsyncContext, Message, RpcError, Service, StatusCode, bind, rpc
from transport.testing import serve_async


class Item(Message):
    n: int = 0


class Early(Service, Protocol, name="transport.tests.Early"):
    @rpc
    def Both(self, requests: Iterator[Item]) -> Iterator[Item]: ...

    @rpc
    def Upload(self, requests: Iterator[Item]) -> Item: ...


class RefuseAtOnce:
    """Ends every call before reading a single request."""

    async def Both(
        self, requests: AsyncIterator[Item], context: AsyncContext
    ) -> AsyncIterator[Item]:
        raise RpcError(StatusCode.NOT_FOUND, "no such stream")
        yield Item()  # pragma: no cover - makes this an async generator

    async def Upload(self, requests: AsyncIterator[Item], context: AsyncContext) -> Item:
        raise RpcError(StatusCode.FAILED_PRECONDITION, "not now")


@pytest.mark.anyio
async def test_a_write_racing_the_servers_status_reports_that_status() -> None:
    # grpc/grpc#36066: before transport._grpc_fixes, about 7% of these came back
    # INTERNAL "Internal error from Core" instead of the server's status.
    seen: collections.Counter[tuple[str, str]] = collections.Counter()
    async with serve_async(bind(Early, RefuseAtOnce())) as server:
        for _ in range(150):
            with pytest.raises(RpcError) as bidi:
                _ = [item async for item in server.client.call(Early.Both, [Item(), Item(n=1)])]
            seen[(bidi.value.code.name, bidi.value.message)] += 1
            with pytest.raises(RpcError) as upload:
                await server.client.call(Early.Upload, [Item(), Item(n=1), Item(n=2)])
            seen[(upload.value.code.name, upload.value.message)] += 1
    assert seen == {("NOT_FOUND", "no such stream"): 150, ("FAILED_PRECONDITION", "not now"): 150}
