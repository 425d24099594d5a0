"""grpc.health.v1 served by transport.health.service, checked with the official grpcio stub."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.eventually import eventually
from transport import RpcError, StatusCode, bind
from transport.health.service import (
    HEALTH_SERVICE,
    Health,
    ServingStatus,
    check,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from transport.interop import AsyncTestServiceServer, TestService, TestServiceServer
from transport.interop.messages import Empty
from transport.runtime import Fence, NoneBackend, Runtime, running
from transport.runtime import Server as RuntimeServer
from transport.testing import AsyncTestServer, TestServer, serve

Response = health_pb2.HealthCheckResponse
SERVING, NOT_SERVING = Response.SERVING, Response.NOT_SERVING
SERVICE_UNKNOWN = Response.SERVICE_UNKNOWN
INTEROP = TestService.service_name()


def _request(service: str = "") -> Any:
    return health_pb2.HealthCheckRequest(service=service)


# --- the wire, against the protobuf runtime


@pytest.mark.parametrize("service", ["", "a", "grpc.testing.TestService", "é" * 70, "x" * 300])
def test_request_bytes_match_protobuf(service: str) -> None:
    official = _request(service).SerializeToString()
    assert encode_request(service) == official
    assert decode_request(official) == service


@pytest.mark.parametrize("status", list(ServingStatus))
def test_response_bytes_match_protobuf(status: ServingStatus) -> None:
    official = Response(status=int(status)).SerializeToString()
    assert encode_response(status) == official
    assert decode_response(official) is status


def test_decoding_skips_unknown_fields_and_refuses_malformed_bytes() -> None:
    with_unknown = b"\x10\x07" + encode_request("svc") + b"\x1d\x00\x00\x00\x00" + b"\x22\x01z"
    assert decode_request(with_unknown) == "svc"
    for malformed in (b"\x0a\x05ab", b"\x0a", b"\x80", b"\x0b", b"\x00\x01", b"\x0a\x01\xff"):
        with pytest.raises(ValueError):
            decode_request(malformed)
    with pytest.raises(ValueError):
        decode_response(b"\x08\x09")


# --- served


@pytest.fixture
def health_server() -> Iterator[tuple[Health, TestServer]]:
    health = Health()
    with serve(bind(TestService, TestServiceServer()), health) as server:
        yield health, server


def test_check_the_server_and_its_services(health_server: tuple[Health, TestServer]) -> None:
    health, server = health_server
    stub = health_pb2_grpc.HealthStub(server.client.channel)
    assert stub.Check(_request(""), timeout=10).status == SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Check(_request(INTEROP), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    health.set(INTEROP, ServingStatus.NOT_SERVING)
    assert stub.Check(_request(INTEROP), timeout=10).status == NOT_SERVING
    health.set(INTEROP, ServingStatus.SERVING)
    assert check(server.client.channel, INTEROP, timeout=10) is ServingStatus.SERVING
    health.clear(INTEROP)
    with pytest.raises(RpcError) as unknown_now:
        check(server.client.channel, INTEROP, timeout=10)
    assert unknown_now.value.code is StatusCode.NOT_FOUND


def test_malformed_request_is_invalid_argument(health_server: tuple[Health, TestServer]) -> None:
    _, server = health_server
    raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = server.client.channel.unary_unary(
        f"/{HEALTH_SERVICE}/Check"
    )
    with pytest.raises(grpc.RpcError) as malformed:
        raw(b"\x0a\x09short", timeout=10)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raw(b"", timeout=10) == b"\x08\x01"


def _watch(stub: Any, service: str) -> tuple[Any, queue.SimpleQueue[int]]:
    """Start a Watch; its statuses arrive on the queue, read by a thread."""
    call = stub.Watch(_request(service), timeout=30)
    statuses: queue.SimpleQueue[int] = queue.SimpleQueue()

    def read() -> None:
        try:
            for response in call:
                statuses.put(response.status)
        except grpc.RpcError:
            statuses.put(-1)

    threading.Thread(target=read, daemon=True).start()
    return call, statuses


def test_watch_an_unknown_service_then_its_changes(
    health_server: tuple[Health, TestServer],
) -> None:
    health, server = health_server
    stub = health_pb2_grpc.HealthStub(server.client.channel)
    call, statuses = _watch(stub, INTEROP)
    assert statuses.get(timeout=10) == SERVICE_UNKNOWN
    health.set(INTEROP, ServingStatus.SERVING)
    assert statuses.get(timeout=10) == SERVING
    health.set(INTEROP, ServingStatus.SERVING)  # no change, no message
    health.set(INTEROP, ServingStatus.NOT_SERVING)
    assert statuses.get(timeout=10) == NOT_SERVING
    health.clear(INTEROP)
    assert statuses.get(timeout=10) == SERVICE_UNKNOWN
    assert health.watching(INTEROP) == 1
    call.cancel()
    assert statuses.get(timeout=10) == -1
    eventually(lambda: health.watching(INTEROP) == 0, "the watcher was released")


def test_graceful_shutdown_reports_not_serving_for_everything(
    health_server: tuple[Health, TestServer],
) -> None:
    health, server = health_server
    stub = health_pb2_grpc.HealthStub(server.client.channel)
    health.set(INTEROP, ServingStatus.SERVING)
    _, whole = _watch(stub, "")
    _, service = _watch(stub, INTEROP)
    assert whole.get(timeout=10) == SERVING and service.get(timeout=10) == SERVING
    health.enter_graceful_shutdown()
    assert whole.get(timeout=10) == NOT_SERVING and service.get(timeout=10) == NOT_SERVING
    health.set(INTEROP, ServingStatus.SERVING)  # ignored from now on
    assert stub.Check(_request(INTEROP), timeout=10).status == NOT_SERVING
    assert stub.Check(_request(""), timeout=10).status == NOT_SERVING
    # Stopping the server ends the watches.
    server.server.stop(grace=1).wait(timeout=10)
    assert whole.get(timeout=10) == -1 and service.get(timeout=10) == -1
    eventually(
        lambda: health.watching("") == 0 and health.watching(INTEROP) == 0, "watchers released"
    )


@pytest.mark.anyio
async def test_on_the_asyncio_server(transport_serve_async: Callable[..., Any]) -> None:
    health = Health()
    server: AsyncTestServer = await transport_serve_async(
        bind(TestService, AsyncTestServiceServer()), health
    )
    stub = health_pb2_grpc.HealthStub(server.client.channel)
    assert (await stub.Check(_request(""), timeout=10)).status == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.Check(_request("nope"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    watch = stub.Watch(_request(INTEROP), timeout=30)
    assert (await watch.read()).status == SERVICE_UNKNOWN
    # set() from another thread reaches the asyncio watcher.
    setter = threading.Thread(target=health.set, args=(INTEROP, ServingStatus.SERVING))
    setter.start()
    assert (await watch.read()).status == SERVING
    setter.join()
    health.enter_graceful_shutdown()
    assert (await watch.read()).status == NOT_SERVING
    assert health.watching(INTEROP) == 1
    watch.cancel()
    deadline = time.monotonic() + 10
    while health.watching(INTEROP):  # the handler's task ends on the loop
        assert time.monotonic() < deadline, "the watcher was not released"
        await asyncio.sleep(0.005)


# --- the owner runtime: NOT_SERVING while it does not hold its lease


def test_health_follows_a_fence() -> None:
    fence = Fence("owner-a", holding=False)
    health = Health()
    health.follow(fence, services=["", Runtime.service_name()])
    assert health.status("") is ServingStatus.NOT_SERVING
    assert health.status(Runtime.service_name()) is ServingStatus.NOT_SERVING
    fence.hold(None)
    assert health.status("") is ServingStatus.SERVING
    fence.lapse()
    assert health.status("") is ServingStatus.NOT_SERVING
    health.enter_graceful_shutdown()
    fence.hold(None)  # shutting down wins over the lease
    assert health.status("") is ServingStatus.NOT_SERVING


@pytest.mark.anyio
async def test_health_reports_the_owner_runtime_lease(tmp_path: Path) -> None:
    health = Health()

    def mount(grpc_server: grpc.aio.Server, server: RuntimeServer) -> None:
        health.add_to(grpc_server)
        health.follow(server)

    async with running(
        NoneBackend(),
        lease=tmp_path / "owner.lease",
        instance_id="owner-a",
        lease_ttl=30,
        mount=mount,
    ) as serving:
        assert serving.owner is not None
        async with grpc.aio.insecure_channel(serving.endpoint) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(_request(""), timeout=30)
            statuses = [(await watch.read()).status]
            if statuses[0] != SERVING:  # a standby until the owner loop takes the lease
                assert statuses[0] == NOT_SERVING
                statuses.append((await watch.read()).status)
            assert statuses[-1] == SERVING
            # The lease is given up: not ready any more, before anything else happens.
            await asyncio.to_thread(serving.owner.release)
            assert (await watch.read()).status == NOT_SERVING
            assert not serving.server.holds_lease
            watch.cancel()


def test_the_draining_interceptor_refuses_new_calls_but_not_probes() -> None:
    health = Health()
    with serve(
        bind(TestService, TestServiceServer()), health, interceptors=[health.interceptor()]
    ) as server:
        stub = health_pb2_grpc.HealthStub(server.client.channel)
        assert stub.Check(_request(""), timeout=10).status == SERVING
        assert server.client.call(TestService.EmptyCall, Empty(), timeout=10) == Empty()
        health.enter_graceful_shutdown()
        assert health.shutting_down
        with pytest.raises(RpcError) as refused:
            server.client.call(TestService.EmptyCall, Empty(), timeout=10)
        assert refused.value.code is StatusCode.UNAVAILABLE
        assert refused.value.message == "the server is shutting down"
        assert stub.Check(_request(""), timeout=10).status == NOT_SERVING
