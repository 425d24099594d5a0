"""Served by ``python -m transport run tests.otel_run_app:bindings --interceptor
transport.otel:ServerTelemetry``: the app sets up the SDK, which writes each finished
span as a line of JSON to the file ``$TRANSPORT_TEST_SPANS`` names."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from tests.echo_service import Echo, EchoServer
from transport import bind


def _line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


# Open for the life of the process, line by line so that each span is on disk once exported.
_spans = open(os.environ["TRANSPORT_TEST_SPANS"], "a", buffering=1)  # noqa: SIM115
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=_spans, formatter=_line)))
trace.set_tracer_provider(_provider)

bindings = bind(Echo, EchoServer())
