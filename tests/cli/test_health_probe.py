"""``python -m transport health HOST:PORT``: grpc.health.v1 with grpc_health_probe's exit codes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health as grpc_health
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.cli.test_demo import ROOT
from tests.conformance.test_security import Pki, pki
from tests.echo_service import Echo, EchoServer
from transport import bind
from transport.__main__ import main
from transport.health.service import Health, ServingStatus
from transport.security import server_credentials
from transport.testing import serve

pytestmark = pytest.mark.slow  # the command line in subprocesses

__all__ = ["pki"]  # the fixture, shared with the security tests

COMMAND = (sys.executable, "-m", "transport", "health")


def _probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["health", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_serving_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(bind(Echo, EchoServer()), Health()) as server:
        assert _probe(capsys, server.address) == (0, "status: SERVING\n", "")


def test_a_service_not_serving_exits_4_and_an_unknown_one_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    health = Health()
    health.set("transport.tests.Echo", ServingStatus.NOT_SERVING)
    with serve(bind(Echo, EchoServer()), health) as server:
        status, out, err = _probe(capsys, server.address, "--service", "transport.tests.Echo")
        assert (status, out) == (4, "")
        assert err == "service unhealthy (responded with 'NOT_SERVING')\n"
        status, out, err = _probe(capsys, server.address, "--service", "nope.Nope")
        assert (status, out) == (3, "")
        assert err.startswith("error: the server does not know the service 'nope.Nope'")


def test_a_server_without_the_health_service_exits_3_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serve(bind(Echo, EchoServer())) as server:
        status, out, err = _probe(capsys, server.address)
    assert (status, out) == (3, "")
    assert "does not implement the grpc health protocol (grpc.health.v1.Health)" in err


def test_a_refused_connection_exits_2_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as placeholder:  # bound, never listening: connections are refused
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        started = time.monotonic()
        status, out, err = _probe(capsys, f"127.0.0.1:{port}", "--connect-timeout", "30")
        took = time.monotonic() - started
    assert (status, out) == (2, "")
    assert err == (
        f"failed to connect service at '127.0.0.1:{port}': Connection refused "
        "(--wait keeps trying until --connect-timeout)\n"
    )
    assert took < 10  # not the 30 s of --connect-timeout


def test_with_wait_nothing_listening_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        args = (f"127.0.0.1:{port}", "--connect-timeout", "0.5", "--wait")
        status, out, err = _probe(capsys, *args)
    assert (status, out) == (2, "")
    assert err == f"failed to connect service at '127.0.0.1:{port}': timed out after 0.5 s\n"


def test_with_wait_a_server_still_starting_is_waited_for() -> None:
    """The first connection fails; the server listens later; the probe retries and passes."""
    refused = threading.Event()
    placeholder = socket.create_server(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]

    def refuse_one() -> None:
        connection, _ = placeholder.accept()
        connection.close()  # not HTTP/2: the probe's first connection fails
        refused.set()

    refusing = threading.Thread(target=refuse_one, daemon=True)
    refusing.start()
    command = [*COMMAND, f"127.0.0.1:{port}", "--wait", "--connect-timeout", "30"]
    pipes: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with subprocess.Popen(command, cwd=ROOT, text=True, **pipes) as probe:
        try:
            assert refused.wait(timeout=30)
            placeholder.close()
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            Health().add_to(server)
            assert server.add_insecure_port(f"127.0.0.1:{port}") == port
            server.start()
            try:
                out, err = probe.communicate(timeout=60)
            finally:
                server.stop(grace=None)
        finally:
            probe.kill()
            placeholder.close()
    assert (probe.returncode, out, err) == (0, "status: SERVING\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nohost"], "error: 'nohost' is not HOST:PORT"),
        (["127.0.0.1:1", "--rpc-timeout", "0"], "error: timeouts must be positive"),
        (["127.0.0.1:1", "--tls-ca-cert", "ca.pem"], "error: the --tls-* flags need --tls"),
        (["127.0.0.1:1", "--tls", "--tls-ca-cert", "/no/such.pem"], "No such file"),
    ],
)
def test_invalid_arguments_exit_1(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, out, err = _probe(capsys, *args)
    assert (status, out) == (1, "") and message in err


@pytest.mark.parametrize("args", [[], ["127.0.0.1:1", "--rpc-timeout", "soon"], ["--bogus"]])
def test_usage_errors_exit_1_too(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["health", *args])
    assert exited.value.code == 1


def test_any_grpc_server_with_the_standard_health_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """grpcio's own health servicer, with protobuf, no transport on the server side."""
    executor = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(executor)
    servicer = grpc_health.HealthServicer()
    servicer.set("db.v1.Store", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        assert _probe(capsys, f"127.0.0.1:{port}")[:2] == (0, "status: SERVING\n")
        assert _probe(capsys, f"127.0.0.1:{port}", "--service", "db.v1.Store")[0] == 4
    finally:
        server.stop(grace=None).wait(timeout=10)
        executor.shutdown(wait=False)


def test_over_tls(pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.ca)
    credentials = server_credentials(pki.server.certificate, pki.server.key)
    with serve(Health(), credentials=credentials) as server:
        tls = ("--tls", "--tls-ca-cert", str(tmp_path / "ca.pem"))
        assert _probe(capsys, server.address, *tls)[:2] == (0, "status: SERVING\n")
        named = ("--tls-server-name", "localhost")
        assert _probe(capsys, f"localhost:{server.port}", *tls, *named)[0] == 0
        # Plaintext to a TLS server never connects.
        assert _probe(capsys, server.address, "--connect-timeout", "0.5")[0] == 2


def test_as_a_command_grpc_core_stays_quiet_unless_asked() -> None:
    with serve(Health()) as server:
        probe = subprocess.run(
            [sys.executable, "-m", "transport", "health", server.address],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert (probe.returncode, probe.stdout, probe.stderr) == (0, "status: SERVING\n", "")
