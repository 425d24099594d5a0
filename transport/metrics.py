"""Prometheus metrics of a server's calls, named as go-grpc-middleware names them.

``bind(Service, impl, interceptors=[metrics.server_interceptor()])`` counts
every call of the binding (``async_server_interceptor()`` for an ``async def``
implementation) and :func:`serve_metrics` serves ``/metrics`` in the Prometheus
text format. The series are those Grafana dashboards for grpc-go already chart:

- ``grpc_server_started_total``: calls started;
- ``grpc_server_handled_total``: calls ended, with their ``grpc_code`` (spelt
  as grpc-go spells it: ``OK``, ``InvalidArgument``, ``Canceled``...);
- ``grpc_server_msg_received_total`` / ``grpc_server_msg_sent_total``: messages;
- ``grpc_server_handling_seconds``: a histogram of call durations, with ``grpc_code``.

Each has the labels ``grpc_type`` (``unary``, ``client_stream``,
``server_stream``, ``bidi_stream``), ``grpc_service`` (``package.Service``) and
``grpc_method``. It needs ``prometheus_client``: ``pip install
'transport-grpc[metrics]'``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._call_watch import watching
from .interceptors import ServerCall
from .service import Cardinality, Method
from .status import StatusCode

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "DEFAULT_BUCKETS",
    "GO_CODES",
    "MISSING",
    "Gauge",
    "add_gauges",
    "async_server_interceptor",
    "available",
    "serve_metrics",
    "server_interceptor",
]

#: What to tell a user who asks for metrics without the extra installed.
MISSING = "metrics need prometheus_client: pip install 'transport-grpc[metrics]'"
#: go-grpc-middleware's default buckets of ``grpc_server_handling_seconds`` (prometheus' own).
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_TYPES = {
    Cardinality.UNARY_UNARY: "unary",
    Cardinality.STREAM_UNARY: "client_stream",
    Cardinality.UNARY_STREAM: "server_stream",
    Cardinality.STREAM_STREAM: "bidi_stream",
}
_LABELS = ("grpc_type", "grpc_service", "grpc_method")
#: ``grpc_code`` as go-grpc-middleware writes it: grpc-go's ``codes.Code.String()``.
GO_CODES = {
    code: "".join(word.capitalize() for word in code.name.split("_")) for code in StatusCode
} | {StatusCode.OK: "OK", StatusCode.CANCELLED: "Canceled"}


def available() -> bool:
    """Whether ``prometheus_client`` can be imported."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ImportError(MISSING) from None
    return prometheus_client


class _Series:
    """The five series of a registry; one per registry, shared by its interceptors."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float]) -> None:
        p = _prometheus()
        coded = (*_LABELS, "grpc_code")
        self.started = p.Counter(
            "grpc_server_started", "RPCs started on the server.", _LABELS, registry=registry
        )
        self.handled = p.Counter(
            "grpc_server_handled",
            "RPCs completed on the server, regardless of success or failure.",
            coded,
            registry=registry,
        )
        self.received = p.Counter(
            "grpc_server_msg_received",
            "RPC stream messages received on the server.",
            _LABELS,
            registry=registry,
        )
        self.sent = p.Counter(
            "grpc_server_msg_sent",
            "gRPC stream messages sent on the server.",
            _LABELS,
            registry=registry,
        )
        self.seconds = p.Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level "
            "handled by the server.",
            coded,
            buckets=buckets,
            registry=registry,
        )
        self._methods: dict[Method[Any, Any], _MethodSeries] = {}

    def of(self, method: Method[Any, Any]) -> _MethodSeries:
        """The children of one method, labelled once (a dict look-up per call after that)."""
        found = self._methods.get(method)
        if found is None:
            found = self._methods[method] = _MethodSeries(self, method)
        return found


class _MethodSeries:
    """The series of one method, with its labels resolved."""

    __slots__ = ("_coded", "_labels", "_series", "received", "sent", "started")

    def __init__(self, series: _Series, method: Method[Any, Any]) -> None:
        self._series = series
        self._labels = (_TYPES[method.cardinality], method.service_name, method.name)
        self.started = series.started.labels(*self._labels)
        self.received = series.received.labels(*self._labels)
        self.sent = series.sent.labels(*self._labels)
        self._coded: dict[StatusCode, tuple[Any, Any]] = {}

    def ended(self, code: StatusCode, seconds: float) -> None:
        """Count the end of a call with ``code`` after ``seconds``."""
        children = self._coded.get(code)
        if children is None:
            labels = (*self._labels, GO_CODES[code])
            children = self._coded[code] = (
                self._series.handled.labels(*labels),
                self._series.seconds.labels(*labels),
            )
        children[0].inc()
        children[1].observe(seconds)


class _Call:
    """One call being counted."""

    __slots__ = ("_series", "_start")

    def __init__(self, series: _MethodSeries) -> None:
        self._series = series
        series.started.inc()
        self._start = time.perf_counter()

    def received(self) -> None:
        self._series.received.inc()

    def sent(self) -> None:
        self._series.sent.inc()

    def end(self, code: StatusCode) -> None:
        self._series.ended(code, time.perf_counter() - self._start)


class _Counting:
    """The watcher of the metrics interceptors."""

    def __init__(self, series: _Series) -> None:
        self._series = series

    def begin(self, call: ServerCall[Any]) -> _Call:
        return _Call(self._series.of(call.method))


_registered: weakref.WeakKeyDictionary[CollectorRegistry, _Series] = weakref.WeakKeyDictionary()


def _series_of(registry: CollectorRegistry | None, buckets: Sequence[float]) -> _Series:
    # A registry refuses a series registered twice: every interceptor of one shares them.
    target = registry if registry is not None else _prometheus().REGISTRY
    found = _registered.get(target)
    if found is None:
        found = _registered[target] = _Series(target, buckets)
    return found


def server_interceptor(
    *, registry: CollectorRegistry | None = None, buckets: Sequence[float] = DEFAULT_BUCKETS
) -> Any:
    """A ``def`` server interceptor that counts calls in ``registry`` (prometheus' default).

    ``buckets`` (seconds) apply when the registry gets its series, on the first
    interceptor made for it. Raises ``ImportError`` naming the extra without
    ``prometheus_client``.
    """
    return watching(_Counting(_series_of(registry, buckets)), asynchronous=False)


def async_server_interceptor(
    *, registry: CollectorRegistry | None = None, buckets: Sequence[float] = DEFAULT_BUCKETS
) -> Any:
    """:func:`server_interceptor` for ``async def`` implementations (``grpc.aio`` servers)."""
    return watching(_Counting(_series_of(registry, buckets)), asynchronous=True)


def serve_metrics(
    port: int, host: str = "127.0.0.1", *, registry: CollectorRegistry | None = None
) -> tuple[str, int]:
    """Serve ``/metrics`` of ``registry`` on ``host:port`` from a daemon thread.

    Port 0 picks a free one; returns the ``(host, port)`` it listens on.
    ``OSError`` if it cannot listen there.
    """
    p = _prometheus()
    server, _thread = p.start_http_server(
        port, addr=host, registry=registry if registry is not None else p.REGISTRY
    )
    bound: tuple[Any, ...] = server.server_address
    return host, int(bound[1])


#: A gauge read at each scrape: its help text and the function that reads it.
Gauge = tuple[str, Callable[[], float]]


def add_gauges(
    gauges: Mapping[str, Gauge], *, registry: CollectorRegistry | None = None
) -> Callable[[], None]:
    """Register gauges read at each scrape (``name: (help, read)``); returns their remover."""
    p = _prometheus()
    target = registry if registry is not None else p.REGISTRY
    made = []
    for name, (text, read) in gauges.items():
        gauge = p.Gauge(name, text, registry=target)
        gauge.set_function(read)
        made.append(gauge)

    def remove() -> None:
        for gauge in made:
            target.unregister(gauge)

    return remove
