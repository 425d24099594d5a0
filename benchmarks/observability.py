"""What tracing costs per call: transport.otel's interceptors on and off.

``python -m benchmarks.observability`` sets up the OpenTelemetry SDK as a
service would (spans to a ``BatchSpanProcessor`` whose exporter drops them,
metrics to an in-memory reader) and measures, in ``--rounds`` interleaved
rounds of ``--calls`` calls each (the order of the variants alternating from
round to round):

- the interceptors alone, around a call that does nothing: none (off), the
  client's, the server's, each with the SDK and with the API's no-op providers,
  beside the SDK's own floor (one span started and ended, one histogram point),
  which every traced call pays whatever the library;
- unary calls end to end on the sync test server (127.0.0.1): a binding and
  client without interceptors (off), with both ends traced to the SDK, and with
  both ends' interceptors on the API's no-op providers (what the interceptors
  themselves cost), beside a pass-through interceptor on each end (what any
  interceptor costs).

Prints the median microseconds per call of each, its spread over the rounds,
and the cost over off in the same run. Needs the ``otel`` extra and
``opentelemetry-sdk``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracerProvider

from transport import Client, bind
from transport.interceptors import ClientCall, ServerCall, chain
from transport.interop import TestService, TestServiceServer
from transport.interop.messages import SimpleRequest
from transport.otel import ClientTelemetry, ServerTelemetry
from transport.testing import serve

REQUEST = SimpleRequest(response_size=8)


class Dropped(SpanExporter):
    """An exporter that drops the spans: the cost measured is the library's and the SDK's."""

    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class PassThrough:
    """An interceptor that does nothing: what the interceptor machinery costs by itself."""

    def intercept(self, call: Any, request: Any, proceed: Callable[[Any], Any]) -> Any:
        return proceed(request)


class _Context:
    """Just what a server interceptor reads of a handler's context."""

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),)


def _alone(interceptors: list[Any], server: bool) -> Callable[[], Any]:
    """One call through ``interceptors`` around a handler that does nothing."""
    method = TestService.UnaryCall
    context = _Context()

    def call() -> Any:
        if server:
            called: Any = ServerCall(method, context)
        else:
            called = ClientCall(method, "127.0.0.1:50000", (), None)
        return chain(interceptors, called, lambda request: request)(REQUEST)

    return call


def _rounds(
    variants: dict[str, Callable[[], Any]], calls: int, rounds: int
) -> dict[str, list[float]]:
    """Microseconds per call of each variant in each round, the variants interleaved."""
    took: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for one in range(rounds):
        for name in names if one % 2 == 0 else reversed(names):
            variant = variants[name]
            started = time.perf_counter()
            for _ in range(calls):
                variant()
            took[name].append((time.perf_counter() - started) / calls * 1e6)
    return took


def _table(title: str, took: dict[str, list[float]], off: str) -> None:
    print(f"\n{title}\n")
    print("| variant | µs per call (median) | spread | cost over off (µs) | x off |")
    print("|---|---|---|---|---|")
    floor = statistics.median(took[off])
    for name, values in took.items():
        median = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        cost = median - floor
        print(f"| {name} | {median:.2f} | {spread} | {cost:+.2f} | {median / floor:.2f} |")


def main() -> None:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description="What tracing costs per call.")
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes")
    args = parser.parse_args()
    calls, rounds = (50, 2) if args.tiny else (args.calls, args.rounds)

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropped()))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    noop: dict[str, Any] = {
        "tracer_provider": NoOpTracerProvider(),
        "meter_provider": NoOpMeterProvider(),
    }

    tracer = trace.get_tracer("floor")
    histogram = metrics.get_meter("floor").create_histogram("floor", unit="ms")
    attributes = {"rpc.system": "grpc", "rpc.service": "s", "rpc.method": "m"}

    def floor() -> None:
        tracer.start_span("s/m", attributes=attributes).end()
        histogram.record(1.0, attributes)

    alone = {
        "off": _alone([], server=False),
        "SDK floor: a span and a histogram point": floor,
        "client, SDK": _alone([ClientTelemetry()], server=False),
        "server, SDK": _alone([ServerTelemetry()], server=True),
        "client, no-op API": _alone([ClientTelemetry(**noop)], server=False),
        "server, no-op API": _alone([ServerTelemetry(**noop)], server=True),
    }
    _table(
        f"The interceptors alone, {rounds} rounds of {calls} calls",
        _rounds(alone, calls, rounds),
        "off",
    )

    plain = bind(TestService, TestServiceServer())
    traced = bind(TestService, TestServiceServer(), interceptors=[ServerTelemetry()])
    passed = bind(TestService, TestServiceServer(), interceptors=[PassThrough()])
    nooped = bind(TestService, TestServiceServer(), interceptors=[ServerTelemetry(**noop)])
    end_calls = max(calls // 5, 20)
    with (
        serve(plain) as off_server,
        serve(traced) as on_server,
        serve(nooped) as noop_server,
        serve(passed) as pass_server,
        pass_server.connect(interceptors=[PassThrough()]) as pass_client,
        on_server.connect(interceptors=[ClientTelemetry()]) as on_client,
        noop_server.connect(interceptors=[ClientTelemetry(**noop)]) as noop_client,
    ):
        end_to_end: dict[str, Callable[[], Any]] = {
            "off": partial(_call, off_server.client),
            "on, SDK (client and server)": partial(_call, on_client),
            "on, no-op API (client and server)": partial(_call, noop_client),
            "a pass-through interceptor each end": partial(_call, pass_client),
        }
        _table(
            f"Unary calls end to end (sync server), {rounds} rounds of {end_calls} calls",
            _rounds(end_to_end, end_calls, rounds),
            "off",
        )
    tracer_provider.shutdown()


def _call(client: Client) -> Any:
    return client.call(TestService.UnaryCall, REQUEST)


if __name__ == "__main__":
    main()
