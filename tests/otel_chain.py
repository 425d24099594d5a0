"""A client -> front server -> back server chain under OpenTelemetry, run in its own process.

``python -m tests.otel_chain ORDER STACK MODE`` prints, as JSON, the spans and the
metric points the SDK's in-memory exporters caught. ORDER is ``sdk-first`` (the
SDK, and upstream instrumentation, set up before ``import transport``) or
``transport-first`` (after the bindings and clients' interceptors exist);
STACK ``sync`` or ``async``; MODE ``ours`` (transport.otel's interceptors) or
``upstream`` (opentelemetry-instrumentation-grpc, no interceptors of ours).
The front's ``Say`` calls the back's ``Say`` with the library's client.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any


def setup(mode: str, stack: str) -> tuple[Any, Any]:
    """The SDK's providers with in-memory exporters, made global; upstream instrumentation."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    if mode == "upstream":
        from opentelemetry.instrumentation import grpc as upstream

        if stack == "sync":
            upstream.GrpcInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
            upstream.GrpcInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
        else:
            upstream.GrpcAioInstrumentorServer().instrument()  # type: ignore[no-untyped-call]
            upstream.GrpcAioInstrumentorClient().instrument()  # type: ignore[no-untyped-call]
    return exporter, reader


def calls_sync(mode: str, late: Any) -> None:
    """The calls, on grpc.server and Client."""
    from tests.echo_service import Echo, EchoServer, Note
    from transport import Client, Context, RpcError, bind
    from transport.testing import serve

    telemetry: dict[str, Any] = {"server": [], "client": []}
    if mode == "ours":
        from transport.otel import ClientTelemetry, ServerTelemetry

        telemetry = {"server": [ServerTelemetry()], "client": [ClientTelemetry()]}

    class Front(EchoServer):
        backend: Client

        def Say(self, request: Note, context: Context) -> Note:
            return self.backend.call(Echo.Say, request)

    front = Front()
    back_binding = bind(Echo, EchoServer(), interceptors=telemetry["server"])
    front_binding = bind(Echo, front, interceptors=telemetry["server"])
    late()
    with serve(back_binding) as back, serve(front_binding) as server:
        front.backend = back.connect(interceptors=telemetry["client"])
        with server.connect(interceptors=telemetry["client"]) as client:
            client.call(Echo.Say, Note(text="hi"))
            # Upstream's sync client interceptor hands back a bare generator for a
            # response stream: read as a call without metadata.
            assert len(list(client.call(Echo.Repeat, Note(text="r", count=2)))) == 2
            notes = iter([Note(text="a"), Note(text="b")])
            assert len(list(client.call(Echo.Chat, notes))) == 3
            with contextlib.suppress(RpcError):  # fails after its first message
                list(client.call(Echo.Chat, iter([Note(text="a"), Note(text="fail")])))
            for text in ("fail", "crash"):
                with contextlib.suppress(RpcError):
                    client.call(Echo.Say, Note(text=text))
        front.backend.close()


def calls_async(mode: str, late: Any) -> None:
    """The calls, on grpc.aio.server and AsyncClient."""
    import asyncio
    from collections.abc import AsyncIterator

    from tests.echo_service import AsyncEchoServer, Echo, Note
    from transport import AsyncClient, AsyncContext, RpcError, bind
    from transport.testing import serve_async

    telemetry: dict[str, Any] = {"server": [], "client": []}
    if mode == "ours":
        from transport.otel import AsyncClientTelemetry, AsyncServerTelemetry

        telemetry = {"server": [AsyncServerTelemetry()], "client": [AsyncClientTelemetry()]}

    class Front(AsyncEchoServer):
        backend: AsyncClient

        async def Say(self, request: Note, context: AsyncContext) -> Note:
            return await self.backend.call(Echo.Say, request)

    async def notes(last: str = "b") -> AsyncIterator[Note]:
        yield Note(text="a")
        yield Note(text=last)

    async def run() -> None:
        front = Front()
        back_binding = bind(Echo, AsyncEchoServer(), interceptors=telemetry["server"])
        front_binding = bind(Echo, front, interceptors=telemetry["server"])
        late()
        async with serve_async(back_binding) as back, serve_async(front_binding) as server:
            front.backend = back.connect(interceptors=telemetry["client"])
            client = server.connect(interceptors=telemetry["client"])
            await client.call(Echo.Say, Note(text="hi"))
            assert len([n async for n in client.call(Echo.Repeat, Note(text="r", count=2))]) == 2
            assert len([n async for n in client.call(Echo.Chat, notes())]) == 3
            with contextlib.suppress(RpcError):  # fails after its first message
                [n async for n in client.call(Echo.Chat, notes("fail"))]
            for text in ("fail", "crash"):
                with contextlib.suppress(RpcError):
                    await client.call(Echo.Say, Note(text=text))
            await client.close()
            await front.backend.close()

    asyncio.run(run())


def main(order: str, stack: str, mode: str) -> None:
    """Run the calls and print what was exported."""
    found: list[Any] = []
    if order == "sdk-first":
        found.extend(setup(mode, stack))
        late = lambda: None  # noqa: E731
    else:
        import transport  # noqa: F401  # before OpenTelemetry is set up

        def late() -> None:
            found.extend(setup(mode, stack))

    (calls_sync if stack == "sync" else calls_async)(mode, late)
    exporter, reader = found
    spans = [
        {
            "name": span.name,
            "kind": span.kind.name,
            "trace": f"{span.context.trace_id:032x}",
            "id": f"{span.context.span_id:016x}",
            "parent": f"{span.parent.span_id:016x}" if span.parent else None,
            "attributes": dict(span.attributes),
            "events": [[event.name, dict(event.attributes)] for event in span.events],
            "status": span.status.status_code.name,
            "scope": span.instrumentation_scope.name,
        }
        for span in exporter.get_finished_spans()
    ]
    points: list[Any] = []
    data = reader.get_metrics_data()  # None when nothing was measured
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    count = getattr(point, "count", None)
                    total = getattr(point, "sum", None)
                    points.append([metric.name, metric.unit, dict(point.attributes), count, total])
    print(json.dumps({"spans": spans, "metrics": points}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
