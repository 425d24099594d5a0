"""``run --metrics-port`` and ``serve --metrics-port``: Prometheus metrics, scraped over HTTP."""

from __future__ import annotations

import asyncio
import math
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.test_demo import ROOT
from tests.cli.test_run import Run
from tests.echo_service import Echo, Note
from tests.eventually import eventually
from transport import AsyncClient, Client, RpcError, StatusCode
from transport.__main__ import main
from transport.runtime import OpenSessionRequest
from transport.runtime.client import Client as RuntimeClient
from transport.runtime.process import DaemonProcess

pytestmark = pytest.mark.slow

SERVICE = "transport.tests.Echo"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
#: Each method of the echo service, its grpc_type, and what one call of the test sends/gets.
KINDS = {
    "Say": ("unary", 1, 1),
    "Repeat": ("server_stream", 1, 3),
    "Collect": ("client_stream", 2, 1),
    "Chat": ("bidi_stream", 2, 3),
}


def scrape(address: str) -> Samples:
    """Every sample of ``http://ADDRESS/metrics``, by name and labels."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 for a series not there yet (a counter not yet moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def _notes(*texts: str) -> list[Note]:
    return [Note(text=text) for text in texts]


def _calls(address: str) -> None:
    """One call of each kind, plus a unary call that fails FAILED_PRECONDITION."""
    with Client.connect(address, timeout=10) as client:
        assert client.call(Echo.Say, Note(text="a")).text == "a"
        with pytest.raises(RpcError) as failed:
            client.call(Echo.Say, Note(text="fail"))
        assert failed.value.code is StatusCode.FAILED_PRECONDITION
        assert len(list(client.call(Echo.Repeat, Note(text="r", count=3)))) == 3
        assert client.call(Echo.Collect, iter(_notes("x", "y"))).count == 2
        assert len(list(client.call(Echo.Chat, iter(_notes("x", "y"))))) == 3  # with "end"


async def _async_calls(address: str) -> None:
    async with AsyncClient.connect(address, timeout=10) as client:
        assert (await client.call(Echo.Say, Note(text="a"))).text == "a"
        with pytest.raises(RpcError) as failed:
            await client.call(Echo.Say, Note(text="fail"))
        assert failed.value.code is StatusCode.FAILED_PRECONDITION
        assert len([n async for n in client.call(Echo.Repeat, Note(text="r", count=3))]) == 3
        assert (await client.call(Echo.Collect, _notes("x", "y"))).count == 2
        assert len([n async for n in client.call(Echo.Chat, _notes("x", "y"))]) == 3


@pytest.mark.parametrize("target", ["tests.run_app:echo", "tests.run_app:async_echo"])
def test_a_scrape_shows_each_call_kind_and_status(target: str) -> None:
    with Run(target, "--port", "0", "--metrics-port", "0") as run:
        line = run.next_line()
        assert line.startswith("metrics on 127.0.0.1:")
        metrics = line.removeprefix("metrics on ")
        before = scrape(metrics)
        if target.endswith("async_echo"):
            asyncio.run(_async_calls(run.address))
        else:
            _calls(run.address)
        after = scrape(metrics)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        for method, (kind, received, sent) in KINDS.items():
            labels = {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method}
            ok = {**labels, "grpc_code": "OK"}
            calls = 2 if method == "Say" else 1  # Say once OK, once FAILED_PRECONDITION
            assert moved("grpc_server_started_total", **labels) == calls, method
            assert moved("grpc_server_handled_total", **ok) == 1, method
            assert moved("grpc_server_msg_received_total", **labels) == received * calls, method
            assert moved("grpc_server_msg_sent_total", **labels) == sent, method
            assert moved("grpc_server_handling_seconds_count", **ok) == 1, method
            assert value(after, "grpc_server_handling_seconds_sum", **ok) > 0, method
            # The histogram's buckets, go-grpc-middleware's (prometheus' defaults) and +Inf.
            for le in ("0.005", "0.1", "1.0", "10.0", "+Inf"):
                assert (
                    "grpc_server_handling_seconds_bucket",
                    frozenset({**ok, "le": le}.items()),
                ) in after, (method, le)
            assert value(after, "grpc_server_handling_seconds_bucket", **ok, le="+Inf") == 1
        failed = {
            "grpc_type": "unary",
            "grpc_service": SERVICE,
            "grpc_method": "Say",
            "grpc_code": "FailedPrecondition",
        }
        assert moved("grpc_server_handled_total", **failed) == 1
        assert moved("grpc_server_handling_seconds_count", **failed) == 1
        assert run.stop()[0] == 0


def test_metrics_listen_where_asked() -> None:
    with Run(
        "tests.run_app:echo", "--port", "0", "--metrics-port", "0", "--metrics-host", "localhost"
    ) as run:
        metrics = run.next_line().removeprefix("metrics on ")
        assert metrics.startswith("localhost:")
        _calls(run.address)
        assert (
            value(
                scrape(metrics),
                "grpc_server_started_total",
                grpc_type="unary",
                grpc_service=SERVICE,
                grpc_method="Say",
            )
            == 2
        )


def test_without_the_flag_nothing_serves_metrics() -> None:
    with Run("tests.run_app:echo", "--port", "0") as run:
        _calls(run.address)
        assert run.stop()[0] == 0
        assert run.next_line() == "<eof>"  # no "metrics on" line


@pytest.mark.parametrize(
    "args",
    [
        ["run", "tests.run_app:echo", "--metrics-port", "0"],
        ["serve", "--metrics-port", "0"],
    ],
)
def test_without_prometheus_client_one_line_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("metrics need prometheus_client: pip install 'transport-grpc[metrics]'\n")
    assert err.count("\n") == 1


def test_workers_refuse_a_metrics_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "tests.run_app:echo", "--workers", "2", "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --metrics-port counts the calls of one process: use --workers 1")
    assert err.count("\n") == 1


def test_the_daemon_serves_its_gauges_and_call_metrics(tmp_path: Path) -> None:
    lease = str(tmp_path / "lease")
    args = ("--lease", lease, "--lease-ttl", "5", "--instance-id", "owner-a", "--metrics-port", "0")
    with DaemonProcess(*args) as daemon:
        eventually(lambda: len(daemon.lines) >= 2, "the metrics line", 10)
        assert daemon.lines[1].startswith("metrics on 127.0.0.1:")
        metrics = daemon.lines[1].removeprefix("metrics on ")
        daemon.wait_ready()
        eventually(lambda: value(scrape(metrics), "transport_runtime_owner_term") >= 1, "term")
        samples = scrape(metrics)
        assert value(samples, "transport_runtime_sessions_open") == 0
        assert value(samples, "transport_runtime_holds_lease") == 1
        assert 0 < value(samples, "transport_runtime_lease_seconds_left") <= 5
        with RuntimeClient(daemon.endpoint, "owner-a", timeout=10) as client:
            session = client.open_session(OpenSessionRequest(type="echo", path="models/echo"))
            samples = scrape(metrics)
            assert value(samples, "transport_runtime_sessions_open") == 1
            opened = {
                "grpc_type": "unary",
                "grpc_service": "transport.v1.Runtime",
                "grpc_method": "OpenSession",
            }
            assert value(samples, "grpc_server_started_total", **opened) == 1
            assert value(samples, "grpc_server_handled_total", **opened, grpc_code="OK") == 1
            session.close()
            assert value(scrape(metrics), "transport_runtime_sessions_open") == 0
        assert daemon.stop() == 0


def test_an_unleased_daemon_has_no_term_and_no_lease_deadline() -> None:
    with DaemonProcess("--metrics-port", "0", "--instance-id", "") as daemon:
        eventually(lambda: len(daemon.lines) >= 2, "the metrics line", 10)
        samples = scrape(daemon.lines[1].removeprefix("metrics on "))
        assert value(samples, "transport_runtime_owner_term") == 0
        assert value(samples, "transport_runtime_holds_lease") == 1
        assert math.isinf(value(samples, "transport_runtime_lease_seconds_left"))
        assert daemon.stop() == 0


def test_a_metrics_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "transport", "run", "tests.run_app:echo"]
        done = subprocess.run(
            [*command, "--port", "0", "--metrics-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"error: --metrics-port: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
