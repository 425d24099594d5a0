"""The standard gRPC health service, ``grpc.health.v1.Health``, for probes and load balancers.

Kubernetes' gRPC probes, ``grpc_health_probe`` and service meshes speak this
protocol with protobuf messages. Its two messages are tiny, so they are encoded
here by hand (no protoc, no protobuf runtime) and the methods are served with
identity serialisers next to the JSON services::

    health = Health()
    server = grpc.server(executor, interceptors=[health.interceptor()])
    health.add_to(server)                      # grpc.server or grpc.aio.server
    health.set("example.v1.Metrics", ServingStatus.SERVING)
    ...
    health.enter_graceful_shutdown()           # NOT_SERVING; new calls UNAVAILABLE
    server.stop(grace=5)                       # calls in flight get 5 s to finish

``""`` names the whole server and starts SERVING. ``Check`` of a service never
set answers NOT_FOUND; ``Watch`` of it sends SERVICE_UNKNOWN, then every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Protocol

import grpc
import grpc.aio

from .._status_map import abort, abort_async, client_errors
from ..status import StatusCode
from .wire import (
    ServingStatus,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)

__all__ = [
    "HEALTH_SERVICE",
    "Health",
    "LeaseHolder",
    "ServingStatus",
    "check",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
]

#: The full name of the standard health service.
HEALTH_SERVICE = "grpc.health.v1.Health"


# --- the service

Notify = Callable[[ServingStatus], None]


class LeaseHolder(Protocol):
    """What serves only while it holds a lease: the owner runtime's ``Server`` or ``Fence``."""

    @property
    def holds_lease(self) -> bool:
        """Whether it serves now."""

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(holds_lease)`` at every change."""


class Health:
    """The serving status of a server and of each of its services, served as ``grpc.health.v1``.

    Thread-safe: set statuses from any thread; one instance can serve sync and
    asyncio servers at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[str, ServingStatus] = {"": ServingStatus.SERVING}
        self._watchers: dict[str, list[Notify]] = {}
        self._shutting_down = False

    def set(self, service: str, status: ServingStatus) -> None:
        """Set the status of ``service`` (``""``: the whole server); ignored once shutting down."""
        with self._lock:
            if self._shutting_down:
                return
            self._update(service, ServingStatus(status))

    def clear(self, service: str) -> None:
        """Forget ``service``: Check answers NOT_FOUND again, watchers see SERVICE_UNKNOWN."""
        with self._lock:
            if self._statuses.pop(service, None) is not None:
                self._notify(service, ServingStatus.SERVICE_UNKNOWN)

    def status(self, service: str = "") -> ServingStatus | None:
        """The status of ``service``, or ``None`` if it was never set."""
        with self._lock:
            return self._statuses.get(service)

    def watching(self, service: str = "") -> int:
        """How many Watch calls follow ``service`` now."""
        with self._lock:
            return len(self._watchers.get(service, ()))

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`enter_graceful_shutdown` was called."""
        return self._shutting_down

    def enter_graceful_shutdown(self) -> None:
        """Report NOT_SERVING for everything, from now on; call it before ``server.stop(grace)``.

        With :meth:`interceptor` installed, new calls are refused UNAVAILABLE
        from now on too, while calls in flight carry on.
        """
        with self._lock:
            self._shutting_down = True
            for service in list(self._statuses):
                self._update(service, ServingStatus.NOT_SERVING)

    def interceptor(self) -> grpc.ServerInterceptor:
        """For ``grpc.server(interceptors=[...])``: UNAVAILABLE to new calls once shutting down.

        Drain with it before ``server.stop(grace)``: a call that arrives in the
        instant the stop begins may otherwise be ended CANCELLED by gRPC
        itself; refused here it is UNAVAILABLE, which clients retry elsewhere.
        The health service itself stays open.
        """
        return _Draining(self)

    def async_interceptor(self) -> grpc.aio.ServerInterceptor:
        """For ``grpc.aio.server(interceptors=[...])``: :meth:`interceptor` for asyncio."""
        return _AsyncDraining(self)

    def follow(self, holder: LeaseHolder, services: Iterable[str] = ("",)) -> None:
        """Report ``services`` SERVING while ``holder`` holds its lease, NOT_SERVING otherwise.

        For the owner runtime: a standby, or an owner whose lease lapsed, is not
        ready, so probes and load balancers stop sending it work::

            def mount(grpc_server, server):
                health.add_to(grpc_server)
                health.follow(server)

            async with transport.runtime.running(backend, lease=path, mount=mount):
                ...
        """
        names = tuple(services)

        def follow(holding: bool) -> None:
            status = ServingStatus.SERVING if holding else ServingStatus.NOT_SERVING
            for name in names:
                self.set(name, status)

        holder.subscribe(follow)
        follow(holder.holds_lease)

    def _update(self, service: str, status: ServingStatus) -> None:
        if self._statuses.get(service) != status:
            self._statuses[service] = status
            self._notify(service, status)

    def _notify(self, service: str, status: ServingStatus) -> None:
        for notify in list(self._watchers.get(service, ())):
            notify(status)

    def _subscribe(self, service: str, notify: Notify) -> None:
        """Call ``notify`` with the current status now, then with every change."""
        with self._lock:
            notify(self._statuses.get(service, ServingStatus.SERVICE_UNKNOWN))
            self._watchers.setdefault(service, []).append(notify)

    def _unsubscribe(self, service: str, notify: Notify) -> None:
        with self._lock:
            watchers = self._watchers.get(service, [])
            if notify in watchers:
                watchers.remove(notify)
            if not watchers:
                self._watchers.pop(service, None)

    # --- sync handlers (grpc.server)

    def _check(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        status = self.status(_requested_service(request, context))
        if status is None:
            abort(context, StatusCode.NOT_FOUND, "unknown service")
        return encode_response(status)

    def _watch(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        service = _requested_service(request, context)
        updates: queue.SimpleQueue[ServingStatus | None] = queue.SimpleQueue()
        # Wakes this thread when the call ends (client gone, deadline, server stop).
        if not context.add_callback(lambda: updates.put(None)):
            return
        self._subscribe(service, updates.put)
        try:
            last = None
            while (status := updates.get()) is not None:
                if status != last:
                    last = status
                    yield encode_response(status)
        finally:
            self._unsubscribe(service, updates.put)

    # --- asyncio handlers (grpc.aio.server)

    async def _check_async(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        status = self.status(await _requested_service_async(request, context))
        if status is None:
            await abort_async(context, StatusCode.NOT_FOUND, "unknown service")
        return encode_response(status)

    async def _watch_async(
        self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        service = await _requested_service_async(request, context)
        loop = asyncio.get_running_loop()
        updates: asyncio.Queue[ServingStatus] = asyncio.Queue()

        def notify(status: ServingStatus) -> None:
            # set() may run on any thread; a closed loop has nobody watching any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(updates.put_nowait, status)

        self._subscribe(service, notify)
        try:
            last = None
            while True:  # a client cancel or server stop cancels this task
                status = await updates.get()
                if status != last:
                    last = status
                    yield encode_response(status)
        finally:
            self._unsubscribe(service, notify)

    def add_to(self, server: grpc.Server | grpc.aio.Server) -> None:
        """Mount ``grpc.health.v1.Health`` on ``server`` (sync or asyncio)."""
        if isinstance(server, grpc.aio.Server):
            check: Callable[..., Any] = self._check_async
            watch: Callable[..., Any] = self._watch_async
        else:
            check, watch = self._check, self._watch
        # No (de)serialisers: the handlers read and write protobuf bytes themselves.
        handler = grpc.method_handlers_generic_handler(
            HEALTH_SERVICE,
            {
                "Check": grpc.unary_unary_rpc_method_handler(check),
                "Watch": grpc.unary_stream_rpc_method_handler(watch),
            },
        )
        server.add_generic_rpc_handlers((handler,))


_SHUTTING_DOWN = "the server is shutting down"


def _refuse(requests: Any, context: grpc.ServicerContext) -> None:
    abort(context, StatusCode.UNAVAILABLE, _SHUTTING_DOWN)


async def _refuse_async(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await abort_async(context, StatusCode.UNAVAILABLE, _SHUTTING_DOWN)


# A refusal takes any call (its request is never read), known method or not.
_REFUSAL: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(_refuse)
_ASYNC_REFUSAL: grpc.RpcMethodHandler[Any, Any] = grpc.stream_stream_rpc_method_handler(
    _refuse_async
)
_HEALTH_PREFIX = f"/{HEALTH_SERVICE}/"


class _Draining(grpc.ServerInterceptor):
    def __init__(self, health: Health) -> None:
        self._health = health

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        if self._health.shutting_down and not method.startswith(_HEALTH_PREFIX):
            return _REFUSAL
        return continuation(handler_call_details)


class _AsyncDraining(grpc.aio.ServerInterceptor):
    def __init__(self, health: Health) -> None:
        self._health = health

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        if self._health.shutting_down and not method.startswith(_HEALTH_PREFIX):
            return _ASYNC_REFUSAL
        return await continuation(handler_call_details)


def _requested_service(request: bytes, context: grpc.ServicerContext) -> str:
    try:
        return decode_request(request)
    except ValueError as exc:
        abort(context, StatusCode.INVALID_ARGUMENT, f"malformed HealthCheckRequest: {exc}")


async def _requested_service_async(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> str:
    try:
        return decode_request(request)
    except ValueError as exc:
        await abort_async(
            context, StatusCode.INVALID_ARGUMENT, f"malformed HealthCheckRequest: {exc}"
        )


def check(
    channel: grpc.Channel, service: str = "", *, timeout: float | None = None
) -> ServingStatus:
    """Ask the server behind ``channel`` for the status of ``service``.

    Raises :class:`~transport.RpcError` when the call fails (NOT_FOUND for a
    service the server does not know, UNIMPLEMENTED without a health service),
    and ``ValueError`` for an answer that is not a ``HealthCheckResponse``.
    """
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{HEALTH_SERVICE}/Check"
    )
    with client_errors():
        answer = call(encode_request(service), timeout=timeout)
    return decode_response(answer)
