"""``transport.metrics`` and ``transport.access_log`` in code: each failure with its status."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import RpcError, access_log, bind, metrics
from transport.testing import AsyncTestServer, TestServer

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]


class Lines(logging.Handler):
    """Keeps what a logger logs."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.lines: list[str] = []
        logger = logging.getLogger(name)
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _handled(registry: CollectorRegistry, method: str, kind: str, code: str) -> float | None:
    labels = {
        "grpc_type": kind,
        "grpc_service": "transport.tests.Echo",
        "grpc_method": method,
        "grpc_code": code,
    }
    return registry.get_sample_value("grpc_server_handled_total", labels)


#: (method, requests, grpc_type, grpc_code, access-log status, received, sent)
FAILURES: list[tuple[Any, ...]] = [
    (Echo.Say, Note(text="crash"), "unary", "Unknown", "UNKNOWN", 1, 0),
    (
        Echo.Collect,
        [Note(text="a"), Note(text="fail")],
        "client_stream",
        "FailedPrecondition",
        "FAILED_PRECONDITION",
        2,
        0,
    ),
    (
        Echo.Chat,
        [Note(text="a"), Note(text="fail")],
        "bidi_stream",
        "FailedPrecondition",
        "FAILED_PRECONDITION",
        2,
        1,
    ),
    (Echo.Repeat, Note(count=10**6), "server_stream", "InvalidArgument", "INVALID_ARGUMENT", 1, 0),
]


def _check(registry: CollectorRegistry, lines: Lines) -> None:
    for n, (method, _, kind, code, status, received, sent) in enumerate(FAILURES):
        assert _handled(registry, method.name, kind, code) == 1, method.name
        assert _handled(registry, method.name, kind, "OK") is None, method.name
        assert lines.lines[n].startswith(f"method={method.path} peer=ipv4:127.0.0.1:")
        assert f" status={status} " in lines.lines[n]
        assert lines.lines[n].endswith(f" received={received} sent={sent}")


def test_sync_failures_are_counted_with_their_status(transport_serve: Serve) -> None:
    registry, lines = CollectorRegistry(), Lines("test.metrics.sync")
    interceptors = [
        metrics.server_interceptor(registry=registry),
        access_log.server_interceptor(logger=lines.logger),
    ]
    server = transport_serve(bind(Echo, EchoServer(), interceptors=interceptors))
    for method, request, *_ in FAILURES:
        with pytest.raises(RpcError):
            result: Any = server.client.call(method, request)
            if method.cardinality.server_streaming:
                list(result)
    _check(registry, lines)


async def test_async_failures_are_counted_with_their_status(
    transport_serve_async: ServeAsync,
) -> None:
    registry, lines = CollectorRegistry(), Lines("test.metrics.async")
    interceptors = [
        metrics.async_server_interceptor(registry=registry),
        access_log.async_server_interceptor(logger=lines.logger),
    ]
    server = await transport_serve_async(bind(Echo, AsyncEchoServer(), interceptors=interceptors))
    for method, request, *_ in FAILURES:
        with pytest.raises(RpcError):
            if method.cardinality.server_streaming:
                assert [note async for note in server.client.call(method, request)] == []
            else:
                await server.client.call(method, request)
    _check(registry, lines)


def test_an_unknown_access_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="access log format 'xml': use one of text, json"):
        access_log.server_interceptor("xml")  # type: ignore[arg-type]


def test_a_registry_gets_its_series_once() -> None:
    registry = CollectorRegistry()
    metrics.server_interceptor(registry=registry)
    metrics.async_server_interceptor(registry=registry)  # no "Duplicated timeseries"
    assert registry.get_sample_value("grpc_server_started_total") is None  # no call yet
