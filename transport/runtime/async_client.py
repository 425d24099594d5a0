"""The asyncio twin of :mod:`.client`: :func:`dial_leader_async` and :class:`AsyncClient`."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import anyio
import numpy.typing as npt

from ..client.aio import AsyncClient as AsyncRpcClient
from ..encoding.wires import check
from ..errors import RpcError
from ..service import UnaryUnary
from .client import (
    DEFAULT_RESOLVE_TIMEOUT,
    GONE_CODES,
    RETRY_CODES,
    Backoff,
    OwnerWatch,
    current_owner,
    fence_metadata,
    no_owner,
)
from .contract import HealthStatus, ModelInfo, OpenSessionRequest
from .lease import LeaseRecord, LeaseStore
from .lease_url import open_lease
from .wire import CloseSessionRequest, GenerateRequest, HealthRequest, InferRequest, Runtime

__all__ = ["AsyncClient", "AsyncRemoteSession", "dial_leader_async"]

Req = TypeVar("Req")
Res = TypeVar("Res")

_HEALTH = HealthRequest()


async def wait_for_owner_async(store: LeaseStore, timeout: float) -> LeaseRecord:
    """The current lease record, polling until some owner holds it (UNAVAILABLE at ``timeout``)."""
    backoff = Backoff(timeout)
    while (record := await anyio.to_thread.run_sync(current_owner, store)) is None:
        pause = backoff.next()
        if pause is None:
            raise no_owner(store, timeout)
        await anyio.sleep(pause)
    return record


class AsyncRemoteSession:
    """A session opened on a daemon, for asyncio: ``infer``, ``generate``, ``close``."""

    def __init__(self, client: AsyncClient, handle: str, info: ModelInfo) -> None:
        self.client = client
        self.handle = handle
        self.info = info
        self.closed = False

    async def infer(
        self, inputs: Mapping[str, npt.NDArray[Any]], *, timeout: float | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """Run the model on named arrays; returns named arrays."""
        request = InferRequest(handle=self.handle, inputs=dict(inputs))
        return (await self.client._call(Runtime.Infer, request, timeout=timeout)).outputs

    async def generate(
        self, prompt: str, max_tokens: int = 0, *, timeout: float | None = None
    ) -> AsyncGenerator[str, None]:
        """Stream the generated text pieces (at most ``max_tokens``; 0: the backend's limit).

        Closing the generator early (``aclose()``) cancels the call.
        """
        request = GenerateRequest(handle=self.handle, prompt=prompt, max_tokens=max_tokens)
        await self.client._follow()
        async with self.client._rpc.call(Runtime.Generate, request, timeout=timeout) as stream:
            async for token in stream:
                yield token.text

    async def close(self, *, timeout: float | None = None) -> None:
        """Close the session (once); a no-op if it already died with its owner."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.client._call(
                Runtime.CloseSession, CloseSessionRequest(handle=self.handle), timeout=timeout
            )
        except RpcError as exc:
            if exc.code not in GONE_CODES:
                raise

    async def __aenter__(self) -> AsyncRemoteSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AsyncClient:
    """A fenced connection to the daemon that owns a lease, for asyncio.

    Make one with :func:`dial_leader_async`; the API mirrors the sync
    :class:`~.client.Client` with coroutines.
    """

    def __init__(
        self,
        endpoint: str,
        expected_owner: str,
        *,
        lease: LeaseStore | None = None,
        timeout: float | None = None,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
        wire: str = "json",
    ) -> None:
        self.lease = lease
        self.wire = wire  # the wire of every call: "json" or "protobuf"
        self.timeout = timeout
        self.resolve_timeout = resolve_timeout
        self.endpoint = endpoint
        self.expected_owner = expected_owner
        self._rpc = AsyncRpcClient.connect(endpoint, timeout=timeout, wire=wire)
        self._rpc.metadata = fence_metadata(expected_owner) or None
        self._watch = OwnerWatch(lease)
        self._owns_lease = False  # True when made from a URL here: closed with the client

    async def resolve(self) -> LeaseRecord:
        """Read the owner and its endpoint from the lease store, waiting for one."""
        if self.lease is None:
            raise ValueError("this client has no lease store to resolve the owner from")
        record = await wait_for_owner_async(self.lease, self.resolve_timeout)
        await self._target(record)
        return record

    async def _follow(self) -> None:
        if (record := self._watch.take()) is not None:
            await self._target(record)

    async def _target(self, record: LeaseRecord) -> None:
        if record.endpoint != self.endpoint:
            await self._rpc.close()
            self._rpc = AsyncRpcClient.connect(
                record.endpoint, timeout=self.timeout, wire=self.wire
            )
            self.endpoint = record.endpoint
        self.expected_owner = record.instance_id
        self._rpc.metadata = fence_metadata(record.instance_id) or None

    async def _call(
        self,
        method: UnaryUnary[Req, Res],
        request: Req,
        *,
        retry: bool = False,
        timeout: float | None = None,
    ) -> Res:
        backoff = Backoff(self.resolve_timeout) if retry and self.lease is not None else None
        while True:
            await self._follow()
            try:
                return await self._rpc.call(method, request, timeout=timeout)
            except RpcError as exc:
                if backoff is None or exc.code not in RETRY_CODES:
                    raise
                pause = backoff.next()
                if pause is None:
                    raise
            await anyio.sleep(pause)
            await self.resolve()

    async def health(self, *, timeout: float | None = None) -> HealthStatus:
        """The unfenced probe: who serves the endpoint and whether it is ready."""
        return await self._rpc.call(Runtime.Health, _HEALTH, timeout=timeout)

    async def describe(
        self, request: OpenSessionRequest, *, retry: bool = False, timeout: float | None = None
    ) -> ModelInfo:
        """A model's capabilities (config ignored); ``retry`` as in the sync client."""
        return await self._call(Runtime.Describe, request, retry=retry, timeout=timeout)

    async def open_session(
        self, request: OpenSessionRequest, *, retry: bool = False, timeout: float | None = None
    ) -> AsyncRemoteSession:
        """Open a session on the model named by ``request``."""
        reply = await self._call(Runtime.OpenSession, request, retry=retry, timeout=timeout)
        return AsyncRemoteSession(self, reply.handle, reply.info)

    async def close(self) -> None:
        """Close the connection."""
        self._watch.close()
        await self._rpc.close()
        if self._owns_lease and self.lease is not None:
            self.lease.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def dial_leader_async(
    endpoint: str | None = None,
    expected_owner: str | None = None,
    *,
    lease: LeaseStore | str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
    wire: str = "json",
) -> AsyncClient:
    """Like :func:`~.client.dial_leader`, for asyncio."""
    check(wire)  # refused before a lease store is opened
    store = None if lease is None else open_lease(lease)
    try:
        if endpoint is None or expected_owner is None:
            if store is None:
                raise ValueError(
                    "give endpoint and expected_owner, or a lease to resolve them from"
                )
            record = await wait_for_owner_async(store, resolve_timeout)
            endpoint, expected_owner = record.endpoint, record.instance_id
    except BaseException:
        if store is not None and store is not lease:
            store.close()
        raise
    client = AsyncClient(
        endpoint,
        expected_owner,
        lease=store,
        timeout=timeout,
        resolve_timeout=resolve_timeout,
        wire=wire,
    )
    client._owns_lease = store is not lease
    return client
