"""Serve implementations on an ephemeral 127.0.0.1 port and hand out connected clients.

For pytest-driven integration tests (the pytest fixtures in
``transport.pytest_plugin`` are built on these)::

    def test_hello():
        with serve(bind(Greeter, GreeterImpl())) as server:
            assert server.client.call(Greeter.SayHello, HelloRequest(name="a")).message
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent import futures
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import grpc.aio

from .client.aio import AsyncClient
from .client.sync import Client
from .options import compression_of, server_options

__all__ = [
    "AsyncTestServer",
    "Mountable",
    "Serve",
    "ServeAsync",
    "TestServer",
    "serve",
    "serve_async",
]


class Mountable(Protocol):
    """What a test server serves: a :class:`~transport.Binding`, a ``Health``, anything alike."""

    def add_to(self, server: grpc.Server | grpc.aio.Server) -> None:
        """Mount the handlers on ``server``."""


@dataclass
class TestServer:
    """A running test server and a sync client connected to it."""

    __test__ = False  # not a pytest test class

    server: grpc.Server
    port: int
    client: Client

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def connect(self, **options: Any) -> Client:
        """Another client on its own channel (closed when the server stops, or by you)."""
        return Client.connect(self.address, **options)


@dataclass
class AsyncTestServer:
    """A running asyncio test server and an asyncio client connected to it."""

    __test__ = False

    server: grpc.aio.Server
    port: int
    client: AsyncClient

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def connect(self, **options: Any) -> AsyncClient:
        """Another asyncio client on its own channel."""
        return AsyncClient.connect(self.address, **options)


def _bound_port(server: Any, credentials: grpc.ServerCredentials | None) -> int:
    if credentials is None:
        port: int = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    if not port:
        raise OSError("could not bind an ephemeral port on 127.0.0.1")
    return port


@contextmanager
def serve(
    *bindings: Mountable,
    max_workers: int = 32,
    max_send_message_bytes: int | None = None,
    max_receive_message_bytes: int | None = None,
    maximum_concurrent_rpcs: int | None = None,
    credentials: grpc.ServerCredentials | None = None,
    interceptors: Sequence[grpc.ServerInterceptor] = (),
    client_options: dict[str, Any] | None = None,
    options: Sequence[tuple[str, Any]] = (),
    wire: str = "json",
    compression: grpc.Compression | str | None = None,
) -> Iterator[TestServer]:
    """Serve ``bindings`` on ``grpc.server`` at 127.0.0.1:<ephemeral>; yield it with a client.

    The server has the library's protections (:func:`~transport.options.server_options`);
    ``options`` are grpc-core arguments that replace or add to them. ``wire``
    is the wire of the client handed out (``"json"`` or ``"protobuf"``);
    ``compression`` (``"gzip"``) compresses what the server sends.
    """
    server_args = server_options(
        max_send_message_bytes=max_send_message_bytes,
        max_receive_message_bytes=max_receive_message_bytes,
        extra=options,
    )
    executor = futures.ThreadPoolExecutor(max_workers=max_workers)
    server = grpc.server(
        executor,
        options=server_args,
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        interceptors=list(interceptors),
        compression=compression_of(compression),
    )
    for binding in bindings:
        binding.add_to(server)
    port = _bound_port(server, credentials)
    server.start()
    client = Client.connect(f"127.0.0.1:{port}", **{"wire": wire, **(client_options or {})})
    try:
        yield TestServer(server, port, client)
    finally:
        client.close()
        server.stop(grace=None).wait(timeout=10)
        executor.shutdown(wait=False, cancel_futures=True)


@asynccontextmanager
async def serve_async(
    *bindings: Mountable,
    max_send_message_bytes: int | None = None,
    max_receive_message_bytes: int | None = None,
    maximum_concurrent_rpcs: int | None = None,
    credentials: grpc.ServerCredentials | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    client_options: dict[str, Any] | None = None,
    options: Sequence[tuple[str, Any]] = (),
    wire: str = "json",
    compression: grpc.Compression | str | None = None,
) -> AsyncIterator[AsyncTestServer]:
    """Serve ``bindings`` on ``grpc.aio.server`` at 127.0.0.1:<ephemeral>, with a client.

    Options as for :func:`serve`.
    """
    server_args = server_options(
        max_send_message_bytes=max_send_message_bytes,
        max_receive_message_bytes=max_receive_message_bytes,
        extra=options,
    )
    server = grpc.aio.server(
        options=server_args,
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        interceptors=list(interceptors),
        compression=compression_of(compression),
    )
    for binding in bindings:
        binding.add_to(server)
    port = _bound_port(server, credentials)
    await server.start()
    client = AsyncClient.connect(f"127.0.0.1:{port}", **{"wire": wire, **(client_options or {})})
    try:
        yield AsyncTestServer(server, port, client)
    finally:
        await client.close()
        await server.stop(grace=None)


class Serve(Protocol):
    """The type of the ``transport_serve`` fixture: ``def test(transport_serve: Serve)``."""

    def __call__(self, *bindings: Mountable, **options: Any) -> TestServer:
        """Start a sync test server (options as :func:`serve` takes them)."""


class ServeAsync(Protocol):
    """The type of the ``transport_serve_async`` fixture."""

    async def __call__(self, *bindings: Mountable, **options: Any) -> AsyncTestServer:
        """Start an asyncio test server (options as :func:`serve_async` takes them)."""
