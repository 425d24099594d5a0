"""OpenTelemetry: one trace across client -> server -> second server, in either import order.

Each case runs ``tests/otel_chain.py`` in its own process, so the global tracer
and meter providers are fresh and the import order is the one asked for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

ROOT = Path(__file__).resolve().parent.parent
ORDERS = ["sdk-first", "transport-first"]
STACKS = ["sync", "async"]
ECHO = "transport.tests.Echo"


def _run(code: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *code], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _chain(order: str, stack: str, mode: str) -> dict[str, Any]:
    exported: dict[str, Any] = json.loads(
        _run(["-m", "tests.otel_chain", order, stack, mode]).stdout
    )
    return exported


def _traces(spans: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The spans of each trace, the traces in the order their calls were made, root first."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_trace.setdefault(span["trace"], []).append(span)
    traces = []
    for found in by_trace.values():
        ordered = [next(span for span in found if span["parent"] is None)]
        while len(ordered) < len(found):
            ordered.append(next(span for span in found if span["parent"] == ordered[-1]["id"]))
        traces.append(ordered)
    return traces


def _hops(trace: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(span["kind"], span["attributes"]["rpc.method"]) for span in trace]


CHAIN = [("CLIENT", "Say"), ("SERVER", "Say"), ("CLIENT", "Say"), ("SERVER", "Say")]


@pytest.mark.slow
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("order", ORDERS)
def test_one_trace_covers_client_server_and_second_server(order: str, stack: str) -> None:
    exported = _chain(order, stack, "ours")
    hello, repeat, chat, chat_fail, fail, crash = _traces(exported["spans"])
    # The front's call to the back is a child of the call it serves, and so on down.
    assert _hops(hello) == CHAIN
    for span in hello:
        assert span["name"] == f"{ECHO}/Say"
        assert span["scope"] == "transport.otel"
        assert span["status"] == "UNSET"
        attributes = span["attributes"]
        assert attributes["rpc.system"] == "grpc"
        assert attributes["rpc.service"] == ECHO
        assert attributes["rpc.grpc.status_code"] == 0
        if span["kind"] == "CLIENT":
            assert attributes["server.address"] == "127.0.0.1"
            assert attributes["server.port"] > 0
        else:
            assert attributes["network.peer.address"] == "127.0.0.1"
            assert attributes["network.peer.port"] > 0
    # The client's target is the front's port, the front's client's the back's.
    assert hello[0]["attributes"]["server.port"] != hello[2]["attributes"]["server.port"]

    # Streams: an event per message, numbered per direction.
    def events(span: dict[str, Any]) -> list[tuple[str, int]]:
        assert {name for name, _ in span["events"]} == {"rpc.message"}
        return sorted((e["rpc.message.type"], e["rpc.message.id"]) for _, e in span["events"])

    assert _hops(repeat) == [("CLIENT", "Repeat"), ("SERVER", "Repeat")]
    assert events(repeat[0]) == [("RECEIVED", 1), ("RECEIVED", 2), ("SENT", 1)]
    assert events(repeat[1]) == [("RECEIVED", 1), ("SENT", 1), ("SENT", 2)]
    sent_two = [("SENT", 1), ("SENT", 2)]
    assert events(chat[0]) == [("RECEIVED", 1), ("RECEIVED", 2), ("RECEIVED", 3), *sent_two]
    assert not hello[0]["events"]  # unary calls carry no message events
    # A stream that fails: its status on both ends, the messages before it counted.
    assert _hops(chat_fail) == [("CLIENT", "Chat"), ("SERVER", "Chat")]
    assert [span["attributes"]["rpc.grpc.status_code"] for span in chat_fail] == [9, 9]
    assert [span["status"] for span in chat_fail] == ["ERROR", "UNSET"]
    assert ("RECEIVED", 2) in events(chat_fail[1]) and ("SENT", 1) in events(chat_fail[1])

    # Errors: the status on every hop; a client's span is an error for any status,
    # a server's only for the statuses that are its own fault.
    assert _hops(fail) == CHAIN and _hops(crash) == CHAIN
    assert {span["attributes"]["rpc.grpc.status_code"] for span in fail} == {9}
    assert [span["status"] for span in fail] == ["ERROR", "UNSET", "ERROR", "UNSET"]
    assert {span["attributes"]["rpc.grpc.status_code"] for span in crash} == {2}
    assert {span["status"] for span in crash} == {"ERROR"}

    # Metrics: a point per method and status, counting calls and messages.
    points = {
        (name, attributes["rpc.method"], attributes["rpc.grpc.status_code"]): (unit, count, total)
        for name, unit, attributes, count, total in exported["metrics"]
    }
    for side in ("server", "client"):
        unit, count, total = points[(f"rpc.{side}.duration", "Say", 0)]
        assert unit == "ms" and count == 2 and total > 0  # the front's call and the back's
        assert points[(f"rpc.{side}.requests_per_rpc", "Chat", 0)][1:] == (1, 2)
        assert points[(f"rpc.{side}.responses_per_rpc", "Chat", 0)][1:] == (1, 3)
        assert points[(f"rpc.{side}.responses_per_rpc", "Repeat", 0)][1:] == (1, 2)
        assert points[(f"rpc.{side}.duration", "Say", 9)][1] == 2
        assert points[(f"rpc.{side}.duration", "Say", 2)][1] == 2
        # Messages per call only for streams (a unary call's are 1, the duration's count).
        assert (f"rpc.{side}.requests_per_rpc", "Say", 0) not in points


@pytest.mark.slow
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("order", ORDERS)
def test_upstream_grpc_instrumentation_traces_the_library_in_either_order(
    order: str, stack: str
) -> None:
    pytest.importorskip("opentelemetry.instrumentation.grpc")
    exported = _chain(order, stack, "upstream")
    hello = _traces(exported["spans"])[0]
    # The client spans come from the channels connect() made after instrumenting.
    assert [span["kind"] for span in hello] == ["CLIENT", "SERVER", "CLIENT", "SERVER"]
    assert {span["scope"] for span in hello} == {"opentelemetry.instrumentation.grpc"}
    assert {span["attributes"]["rpc.method"] for span in hello} == {"Say"}


def test_importing_transport_does_not_import_opentelemetry() -> None:
    _run(
        [
            "-c",
            "import sys, transport, transport.testing, transport.client, transport.interceptors\n"
            "assert not [m for m in sys.modules if m.startswith('opentelemetry')]",
        ]
    )


def test_without_opentelemetry_the_module_names_the_extra() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['opentelemetry'] = None\n"
            "import transport\n"
            "import transport.otel",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: transport.otel needs OpenTelemetry: pip install 'transport-grpc[otel]'"
    )


@pytest.mark.slow
def test_run_takes_the_server_interceptor_and_continues_the_callers_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.cli.test_run import Run
    from tests.echo_service import Echo, Note
    from transport import Client
    from transport.otel import ClientTelemetry

    spans_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv("TRANSPORT_TEST_SPANS", str(spans_file))
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # this process's own: the global one stays untouched
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry = ClientTelemetry(tracer_provider=provider)
    with Run(
        "tests.otel_run_app:bindings", "--interceptor", "transport.otel:ServerTelemetry"
    ) as run:
        with Client.connect(run.address, interceptors=[telemetry]) as client:
            assert client.call(Echo.Say, Note(text="hi")).text == "hi"
        code, _ = run.stop()
    assert code == 0
    (client_span,) = exporter.get_finished_spans()
    (served,) = [json.loads(line) for line in spans_file.read_text().splitlines()]
    assert served["kind"] == "SpanKind.SERVER" and served["name"] == f"{ECHO}/Say"
    assert served["context"]["trace_id"] == f"0x{client_span.context.trace_id:032x}"
    assert served["parent_id"] == f"0x{client_span.context.span_id:016x}"
    assert served["attributes"]["rpc.grpc.status_code"] == 0
