"""OpenTelemetry traces and metrics for every call, as interceptors (``pip install ...[otel]``).

:class:`ServerTelemetry` and :class:`ClientTelemetry` (``def intercept``, for
``grpc.server`` bindings and :class:`~transport.Client`), and
:class:`AsyncServerTelemetry` and :class:`AsyncClientTelemetry` (for asyncio),
follow the OpenTelemetry RPC semantic conventions: a span per call named
``service/method`` (SERVER or CLIENT kind) with ``rpc.system="grpc"``,
``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``, the peer
(``server.address``/``server.port`` on the client,
``network.peer.address``/``network.peer.port`` on the server) and, for a call
that streams either way, an ``rpc.message`` event per message
(``rpc.message.type`` SENT or RECEIVED, ``rpc.message.id`` from 1). The client
injects the trace context into the metadata through the global propagator
(W3C ``traceparent`` by default) and the server extracts it, so a handler's own
calls are children of the call it serves. Each end records the
``rpc.{server,client}.duration`` histogram (ms) and, for calls that stream,
``requests_per_rpc`` / ``responses_per_rpc`` (the conventions require them of
streams; a unary call's are 1, the duration's count). The message sizes are
not recorded: the interceptors see decoded messages, not their bytes.

The tracer and the meter come from the global providers (or those given),
through OpenTelemetry's proxies: an SDK set up after the interceptors were made
is the one that records.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.trace import SpanKind, Status
    from opentelemetry.trace import StatusCode as SpanStatus
except ImportError as exc:  # the one line a user without the extra sees
    raise ImportError(
        "transport.otel needs OpenTelemetry: pip install 'transport-grpc[otel]'"
    ) from exc

from .errors import RpcError
from .interceptors import ClientCall, Proceed, ServerCall
from .status import StatusCode

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from .service import Method

__all__ = ["AsyncClientTelemetry", "AsyncServerTelemetry", "ClientTelemetry", "ServerTelemetry"]

_SCOPE = "transport.otel"
_SENT, _RECEIVED = "SENT", "RECEIVED"
# A server's span is an error for these codes only; the others are the client's
# doing (the conventions' rule). A client's span is an error for any code but OK.
_SERVER_ERRORS = frozenset(
    {
        StatusCode.UNKNOWN,
        StatusCode.DEADLINE_EXCEEDED,
        StatusCode.UNIMPLEMENTED,
        StatusCode.INTERNAL,
        StatusCode.UNAVAILABLE,
        StatusCode.DATA_LOSS,
    }
)


def _code(error: BaseException | None) -> StatusCode:
    """The status a call ended with, from what ended it."""
    if error is None:
        return StatusCode.OK
    if isinstance(error, RpcError):
        return error.code
    if isinstance(error, (GeneratorExit, asyncio.CancelledError)):
        return StatusCode.CANCELLED  # the reader of a stream stopped, or the task was cancelled
    return StatusCode.UNKNOWN


@functools.lru_cache(maxsize=1024)  # a client's target, a connection's peer: parsed once
def _address(text: str) -> tuple[str, int | None]:
    """Host and port of ``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``, ``dns:///h:5`` or ``h:5``."""
    scheme, colon, rest = text.partition(":")
    if colon and scheme in ("ipv4", "ipv6", "dns"):
        text = unquote(rest).lstrip("/")
    elif colon and scheme.startswith("unix"):
        return rest, None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        return text, None
    return host.strip("[]"), int(port)


class _Call:
    """One call being traced: its span, its clock and its message counts."""

    __slots__ = ("attributes", "context", "received", "sent", "side", "span", "started", "streams")

    def __init__(
        self,
        side: _Side,
        span: trace.Span,
        parent: Context | None,
        attributes: dict[str, Any],
        streams: bool,
    ) -> None:
        self.side = side
        self.span = span
        self.context = trace.set_span_in_context(span, parent)
        self.attributes = attributes  # of the metrics: the method's, without the peer
        self.streams = streams  # message events only for calls that stream
        self.sent = self.received = 0
        self.started = time.perf_counter_ns()

    def message(self, kind: str) -> None:
        """Count a message; an ``rpc.message`` event on a streaming call."""
        if kind is _SENT:
            self.sent += 1
            number = self.sent
        else:
            self.received += 1
            number = self.received
        if self.streams:
            self.span.add_event("rpc.message", {"rpc.message.type": kind, "rpc.message.id": number})

    def end(self, error: BaseException | None) -> None:
        """End the span with the call's status and record the metrics."""
        took_ms = (time.perf_counter_ns() - self.started) / 1e6
        code = _code(error)
        span = self.span
        span.set_attribute("rpc.grpc.status_code", int(code))
        if code and (self.side.client or code in _SERVER_ERRORS):
            message = error.message if isinstance(error, RpcError) else repr(error)
            span.set_status(Status(SpanStatus.ERROR, f"{code.name}: {message}"))
            if not isinstance(error, (RpcError, GeneratorExit, asyncio.CancelledError)):
                span.record_exception(error)  # type: ignore[arg-type]
        span.end()
        attributes = {**self.attributes, "rpc.grpc.status_code": int(code)}
        side = self.side
        side.duration.record(took_ms, attributes)
        if self.streams:  # the conventions require them of streams; a unary call's are 1
            client = side.client
            side.requests.record(self.sent if client else self.received, attributes)
            side.responses.record(self.received if client else self.sent, attributes)


class _Side:
    """The tracer and the instruments of one end of the calls (server or client)."""

    def __init__(
        self,
        client: bool,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
    ) -> None:
        self.client = client
        side = "client" if client else "server"
        self.kind = SpanKind.CLIENT if client else SpanKind.SERVER
        self.tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            f"rpc.{side}.duration", unit="ms", description="Duration of the calls"
        )
        self.requests = meter.create_histogram(
            f"rpc.{side}.requests_per_rpc", unit="{count}", description="Requests per call"
        )
        self.responses = meter.create_histogram(
            f"rpc.{side}.responses_per_rpc", unit="{count}", description="Responses per call"
        )
        self._methods: dict[str, tuple[str, dict[str, Any]]] = {}

    def start(self, method: Method[Any, Any], peer: str, parent: Context | None) -> _Call:
        """A span for a call of ``method`` with ``peer``, child of ``parent``."""
        found = self._methods.get(method.path)
        if found is None:
            attributes = {
                "rpc.system": "grpc",
                "rpc.service": method.service_name,
                "rpc.method": method.name,
            }
            name = f"{method.service_name}/{method.name}"
            found = self._methods[method.path] = (name, attributes)
        name, attributes = found
        host, port = _address(peer)
        prefix = "server" if self.client else "network.peer"
        span_attributes: dict[str, Any] = {**attributes, f"{prefix}.address": host}
        if port is not None:
            span_attributes[f"{prefix}.port"] = port
        span = self.tracer.start_span(
            name, context=parent, kind=self.kind, attributes=span_attributes
        )
        cardinality = method.cardinality
        streams = cardinality.client_streaming or cardinality.server_streaming
        return _Call(self, span, parent, attributes, streams)

    def server_call(self, call: ServerCall[Any]) -> _Call:
        """The span of a call being served, child of the context the client sent."""
        carrier = {key: value for key, value in call.metadata if isinstance(value, str)}
        return self.start(call.method, call.peer, propagate.extract(carrier))

    def client_call(self, call: ClientCall) -> _Call:
        """The span of a call being made, its context added to the call's metadata."""
        record = self.start(call.method, call.target, None)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=record.context)
        call.metadata = (*call.metadata, *carrier.items())
        return record


def _each(record: _Call, messages: Iterator[Any], kind: str) -> Iterator[Any]:
    """The messages, each counted."""
    for message in messages:
        record.message(kind)
        yield message


async def _each_async(record: _Call, messages: AsyncIterator[Any], kind: str) -> AsyncIterator[Any]:
    """:func:`_each` for asyncio."""
    async for message in messages:
        record.message(kind)
        yield message


def _responses(record: _Call, responses: Iterator[Any], kind: str, current: Any) -> Iterator[Any]:
    """The responses, each counted, the span ended with the stream; under ``current`` if given."""
    try:
        while True:
            token = otel_context.attach(current) if current is not None else None
            try:
                response = next(responses)
            except StopIteration:
                break
            finally:
                if token is not None:
                    otel_context.detach(token)
            record.message(kind)
            yield response
    except BaseException as exc:
        record.end(exc)
        raise
    record.end(None)


async def _responses_async(
    record: _Call, responses: AsyncIterator[Any], kind: str, current: Any
) -> AsyncIterator[Any]:
    """:func:`_responses` for asyncio."""
    try:
        while True:
            token = otel_context.attach(current) if current is not None else None
            try:
                response = await responses.__anext__()
            except StopAsyncIteration:
                break
            finally:
                if token is not None:
                    otel_context.detach(token)
            record.message(kind)
            yield response
    except BaseException as exc:
        record.end(exc)
        raise
    record.end(None)


class _Telemetry:
    """Settings shared by the four interceptors."""

    _client = False

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        """``tracer_provider``/``meter_provider``: the global ones unless given."""
        self._side = _Side(self._client, tracer_provider, meter_provider)


class ServerTelemetry(_Telemetry):
    """Traces and measures each call of a ``grpc.server`` binding; its handler runs in the span."""

    def intercept(self, call: ServerCall[Any], request: Any, proceed: Proceed) -> Any:
        """Serve the call inside its span, child of the client's."""
        record = self._side.server_call(call)
        cardinality = call.method.cardinality
        if cardinality.client_streaming:
            request = _each(record, request, _RECEIVED)
        else:
            record.message(_RECEIVED)
        token = otel_context.attach(record.context)
        try:
            response = proceed(request)
        except BaseException as exc:
            record.end(exc)
            raise
        finally:
            otel_context.detach(token)
        if cardinality.server_streaming:
            return _responses(record, response, _SENT, record.context)
        record.message(_SENT)
        record.end(None)
        return response


class AsyncServerTelemetry(_Telemetry):
    """:class:`ServerTelemetry` for ``grpc.aio.server`` bindings."""

    async def intercept(self, call: ServerCall[Any], request: Any, proceed: Proceed) -> Any:
        """Serve the call inside its span, child of the client's."""
        record = self._side.server_call(call)
        cardinality = call.method.cardinality
        if cardinality.client_streaming:
            request = _each_async(record, request, _RECEIVED)
        else:
            record.message(_RECEIVED)
        token = otel_context.attach(record.context)
        try:
            response = await proceed(request)
        except BaseException as exc:
            record.end(exc)
            raise
        finally:
            otel_context.detach(token)
        if cardinality.server_streaming:
            return _responses_async(record, response, _SENT, record.context)
        record.message(_SENT)
        record.end(None)
        return response


class ClientTelemetry(_Telemetry):
    """Traces and measures each call of a :class:`~transport.Client`; sends the trace context."""

    _client = True

    def intercept(self, call: ClientCall, request: Any, proceed: Proceed) -> Any:
        """Make the call inside a span, child of the current one."""
        record = self._side.client_call(call)
        cardinality = call.method.cardinality
        if cardinality.client_streaming:
            request = _each(record, request, _SENT)
        else:
            record.message(_SENT)
        try:
            response = proceed(request)
        except BaseException as exc:
            record.end(exc)
            raise
        if cardinality.server_streaming:
            return _responses(record, response, _RECEIVED, None)
        record.message(_RECEIVED)
        record.end(None)
        return response


class AsyncClientTelemetry(_Telemetry):
    """:class:`ClientTelemetry` for :class:`~transport.AsyncClient`."""

    _client = True

    async def intercept(self, call: ClientCall, request: Any, proceed: Proceed) -> Any:
        """Make the call inside a span, child of the current one."""
        record = self._side.client_call(call)
        cardinality = call.method.cardinality
        if cardinality.client_streaming:
            request = _each_async(record, request, _SENT)
        else:
            record.message(_SENT)
        try:
            response = await proceed(request)
        except BaseException as exc:
            record.end(exc)
            raise
        if cardinality.server_streaming:
            return _responses_async(record, response, _RECEIVED, None)
        record.message(_RECEIVED)
        record.end(None)
        return response
