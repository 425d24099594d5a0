"""Count the calls in flight, so a stopping server waits for them and not a fixed time.

``run`` drains on SIGTERM in three steps: the health service turns NOT_SERVING
and new calls are refused UNAVAILABLE (:meth:`transport.health.service.Health.interceptor`),
then :meth:`InFlight.wait_idle` waits, up to the grace period, for the calls
already running to finish, then the server stops. Stopping at once instead
would end calls that arrive during grpcio's own grace period CANCELLED, which
clients do not retry. Health calls are not counted: a ``Watch`` never ends.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
import grpc.aio

from ..health.service import HEALTH_SERVICE

__all__ = ["InFlight"]

_UNCOUNTED = f"/{HEALTH_SERVICE}/"
_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class InFlight:
    """How many calls are running, and a way to wait until none is."""

    def __init__(self) -> None:
        self._idle = threading.Condition()
        self._count = 0

    @property
    def count(self) -> int:
        """The calls running now."""
        return self._count

    def _enter(self) -> None:
        with self._idle:
            self._count += 1

    def _exit(self) -> None:
        with self._idle:
            self._count -= 1
            if not self._count:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no call runs, for at most ``timeout`` seconds; whether none runs."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._count, timeout)

    async def wait_idle_async(self, timeout: float) -> bool:
        """:meth:`wait_idle` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_idle, timeout)

    def interceptor(self) -> grpc.ServerInterceptor:
        """For ``grpc.server(interceptors=[...])``, after the health draining interceptor."""
        return _Counting(self)

    def async_interceptor(self) -> grpc.aio.ServerInterceptor:
        """For ``grpc.aio.server(interceptors=[...])``."""
        return _AsyncCounting(self)

    def _wrap(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        enter, exit_ = self._enter, self._exit
        if inspect.isasyncgenfunction(behavior):

            async def stream_async(request: Any, context: Any) -> AsyncIterator[Any]:
                enter()
                try:
                    async for reply in behavior(request, context):
                        yield reply
                finally:
                    exit_()

            return stream_async
        if inspect.iscoroutinefunction(behavior):

            async def unary_async(request: Any, context: Any) -> Any:
                enter()
                try:
                    return await behavior(request, context)
                finally:
                    exit_()

            return unary_async
        if inspect.isgeneratorfunction(behavior):

            def stream(request: Any, context: Any) -> Iterator[Any]:
                enter()
                try:
                    yield from behavior(request, context)
                finally:
                    exit_()

            return stream

        def unary(request: Any, context: Any) -> Any:
            enter()
            try:
                return behavior(request, context)
            finally:
                exit_()

        return unary

    def _counted(
        self, handler: grpc.RpcMethodHandler[Any, Any] | None, method: str
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if handler is None or method.startswith(_UNCOUNTED):
            return handler
        for kind in _BEHAVIORS:
            behavior = getattr(handler, kind)
            if behavior is not None:
                factory = getattr(grpc, f"{kind}_rpc_method_handler")
                counted: grpc.RpcMethodHandler[Any, Any] = factory(
                    self._wrap(behavior),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
                return counted
        return handler


class _Counting(grpc.ServerInterceptor):
    def __init__(self, in_flight: InFlight) -> None:
        self._in_flight = in_flight

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        return self._in_flight._counted(continuation(handler_call_details), method)


class _AsyncCounting(grpc.aio.ServerInterceptor):
    def __init__(self, in_flight: InFlight) -> None:
        self._in_flight = in_flight

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        return self._in_flight._counted(await continuation(handler_call_details), method)
