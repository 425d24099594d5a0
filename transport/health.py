"""The standard gRPC health service, ``grpc.health.v1.Health``, for probes and load balancers.

Kubernetes' gRPC probes, ``grpc_health_probe`` and service meshes speak this
protocol with protobuf messages. Its two messages are tiny, so they are encoded
here by hand (no protoc, no protobuf runtime) and the methods are served with
identity serialisers next to the JSON services::

    health = Health()
    health.add_to(server)                      # grpc.server or grpc.aio.server
    health.set("example.v1.Metrics", ServingStatus.SERVING)
    ...
    health.enter_graceful_shutdown()           # every service NOT_SERVING
    server.stop(grace=5)

``""`` names the whole server and starts SERVING. ``Check`` of a service never
set answers NOT_FOUND; ``Watch`` of it sends SERVICE_UNKNOWN, then every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Protocol

import grpc
import grpc.aio

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


class ServingStatus(enum.IntEnum):
    """``HealthCheckResponse.ServingStatus``: the numbers are the wire values."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3  # only sent by Watch


# --- the wire: HealthCheckRequest{string service = 1}, HealthCheckResponse{enum status = 1}


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & (2**64 - 1), pos
    raise ValueError("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield ``(field number, value)`` of a protobuf message; unknown wire types fail."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: int | bytes
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            if pos + width > len(data):
                raise ValueError("truncated fixed-width field")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        yield number, value


def encode_request(service: str) -> bytes:
    """The protobuf bytes of ``HealthCheckRequest{service}``."""
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def decode_request(data: bytes) -> str:
    """The service named by ``HealthCheckRequest`` bytes; raise ValueError if malformed."""
    service = ""
    for number, value in _fields(data):
        if number == 1:  # the last occurrence wins, as in protobuf
            if not isinstance(value, bytes):
                raise ValueError("service is not length-delimited")
            service = value.decode("utf-8")
    return service


def encode_response(status: ServingStatus) -> bytes:
    """The protobuf bytes of ``HealthCheckResponse{status}`` (empty for UNKNOWN)."""
    return b"\x08" + _varint(int(status)) if status else b""


def decode_response(data: bytes) -> ServingStatus:
    """The status in ``HealthCheckResponse`` bytes; raise ValueError if malformed."""
    status = 0
    for number, value in _fields(data):
        if number == 1:
            if not isinstance(value, int):
                raise ValueError("status is not a varint")
            status = value
    try:
        return ServingStatus(status)
    except ValueError:
        raise ValueError(f"unknown serving status {status}") from None


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

    def enter_graceful_shutdown(self) -> None:
        """Report NOT_SERVING for everything, from now on; call it before ``server.stop(grace)``."""
        with self._lock:
            self._shutting_down = True
            for service in list(self._statuses):
                self._update(service, ServingStatus.NOT_SERVING)

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
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
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
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
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


def _requested_service(request: bytes, context: grpc.ServicerContext) -> str:
    try:
        return decode_request(request)
    except ValueError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed HealthCheckRequest: {exc}")
        raise  # pragma: no cover - abort() raised


async def _requested_service_async(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> str:
    try:
        return decode_request(request)
    except ValueError as exc:
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"malformed HealthCheckRequest: {exc}"
        )
        raise  # pragma: no cover - abort() raised


def check(
    channel: grpc.Channel, service: str = "", *, timeout: float | None = None
) -> ServingStatus:
    """Ask the server behind ``channel`` for the status of ``service``; raise grpc.RpcError."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{HEALTH_SERVICE}/Check"
    )
    return decode_response(call(encode_request(service), timeout=timeout))
