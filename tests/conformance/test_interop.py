"""gRPC's interop cases against this library's own servers, in process and on the command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

from transport import AsyncClient, bind
from transport.health.service import Health
from transport.interop import (
    CASES,
    AsyncTestServiceServer,
    TestService,
    TestServiceServer,
    run_cases,
)
from transport.interop.__main__ import main
from transport.interop.messages import (
    Payload,
    PayloadType,
    ResponseParameters,
    SimpleRequest,
    StreamingOutputCallRequest,
)
from transport.testing import AsyncTestServer, TestServer, serve

ALL = list(CASES)
_MODULE = [sys.executable, "-m", "transport.interop"]


def _failures(results: list[Any]) -> list[str]:
    return [str(result) for result in results if not result.passed]


@pytest.mark.anyio
async def test_every_case_passes_against_the_sync_server() -> None:
    with serve(bind(TestService, TestServiceServer())) as server:
        async with AsyncClient.connect(server.address, timeout=10) as client:
            results = await run_cases(client, ALL, time_limit=10)
    assert [r.name for r in results] == ALL
    assert _failures(results) == []


@pytest.mark.anyio
async def test_every_case_passes_against_the_asyncio_server(
    transport_serve_async: Callable[..., Any],
) -> None:
    server: AsyncTestServer = await transport_serve_async(
        bind(TestService, AsyncTestServiceServer())
    )
    results = await run_cases(server.client, ALL, time_limit=10)
    assert _failures(results) == []


def test_wire_follows_the_proto3_json_mapping() -> None:
    codec = TestService.UnaryCall.request_codec
    request = SimpleRequest(response_size=3, payload=Payload(body=b"\x00\x01"))
    assert codec.encode(request) == b'{"responseSize":3,"payload":{"body":"AAE="}}'
    wire = (
        b'{"responseType":"COMPRESSABLE","responseParameters":[{"size":9,"intervalUs":5}],'
        b'"responseStatus":{"code":2,"message":"m"}}'
    )
    decoded = TestService.FullDuplexCall.request_codec.decode(wire)
    assert decoded.response_type is PayloadType.COMPRESSABLE
    assert decoded.response_parameters == [ResponseParameters(size=9, interval_us=5)]
    assert decoded.response_status is not None and decoded.response_status.code == 2
    assert TestService.EmptyCall.response_codec.encode(TestService.EmptyCall.response_type()) == (
        b"{}"
    )


def test_unknown_payload_type_and_huge_sizes_are_refused(
    transport_serve: Callable[..., TestServer],
) -> None:
    server = transport_serve(bind(TestService, TestServiceServer()))
    raw: grpc.UnaryUnaryMultiCallable[bytes, bytes] = server.client.channel.unary_unary(
        "/grpc.testing.TestService/UnaryCall"
    )

    with pytest.raises(grpc.RpcError) as bad_enum:
        raw(b'{"responseType": "RANDOM"}', timeout=5)
    assert bad_enum.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as huge:
        raw(b'{"responseSize": 2000000000}', timeout=5)
    assert huge.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raw(b"{}", timeout=5) == b'{"payload":{}}'


def test_client_exit_status_and_summary_line(
    transport_serve: Callable[..., TestServer], capsys: pytest.CaptureFixture[str]
) -> None:
    good = transport_serve(bind(TestService, TestServiceServer()))
    argv = ["client", "--server_port", str(good.port), "--time_limit", "10"]
    assert main([*argv, "--test_case", "empty_unary,large_unary"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS empty_unary") and out[1].startswith("PASS large_unary")
    assert out[-1] == "2 passed, 0 failed"

    # A server without the test service fails the cases (not the unimplemented ones).
    empty = transport_serve(Health())
    assert main(["client", "--server_port", str(empty.port), "--time_limit", "10"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(ALL) + 1
    summary = re.fullmatch(r"(\d+) passed, (\d+) failed", out[-1])
    assert summary is not None and int(summary[2]) >= 10
    assert "FAIL empty_unary (" in out[0] and "unexpected status UNIMPLEMENTED" in out[0]
    assert out[len(ALL) - 1].startswith("PASS unimplemented_service")


@contextmanager
def _server_process(*flags: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [*_MODULE, "server", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("listening on 127.0.0.1:"), first
        yield process, int(first.rsplit(":", 1)[1])
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("flags", [(), ("--asyncio",)], ids=["sync", "asyncio"])
def test_command_line_client_against_command_line_server(flags: tuple[str, ...]) -> None:
    with _server_process(*flags) as (process, port):
        client = subprocess.run(
            [*_MODULE, "client", "--server_host", "127.0.0.1", "--server_port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client.returncode == 0, client.stdout + client.stderr
        lines = client.stdout.splitlines()
        assert [line.split()[1] for line in lines[:-1]] == ALL
        assert lines[-1] == f"{len(ALL)} passed, 0 failed"
        process.send_signal(signal.SIGTERM)  # a graceful stop, exit status 0
        assert process.wait(timeout=15) == 0


def test_interval_us_spaces_the_responses(transport_serve: Callable[..., TestServer]) -> None:
    server = transport_serve(bind(TestService, TestServiceServer()))
    request = StreamingOutputCallRequest(
        response_parameters=[ResponseParameters(size=1, interval_us=50_000)] * 3
    )
    started = time.monotonic()
    assert len(list(server.client.call(TestService.StreamingOutputCall, request))) == 3
    assert time.monotonic() - started >= 0.15


@pytest.mark.anyio
async def test_half_duplex_answers_every_request_in_order(
    transport_serve_async: Callable[..., Any],
) -> None:
    server: AsyncTestServer = await transport_serve_async(
        bind(TestService, AsyncTestServiceServer())
    )
    stream = server.client.open(TestService.HalfDuplexCall)
    for size in (3, 1, 4):
        await stream.write(
            StreamingOutputCallRequest(response_parameters=[ResponseParameters(size=size)])
        )
    await stream.done_writing()
    sizes = [len(r.payload.body) if r.payload else 0 async for r in stream]
    assert sizes == [3, 1, 4]
