"""A user's service module, served by ``python -m transport run tests.run_app:ATTR`` in tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from transport import (
    AsyncContext,
    Binding,
    Context,
    Message,
    RpcError,
    ServerCall,
    Service,
    StatusCode,
    bind,
    rpc,
)


class Key(Message):
    key: str = ""


class Value(Message):
    value: str = ""
    pid: int = 0


class KV(Service, Protocol, name="kv.v1.KV"):
    @rpc
    def Get(self, request: Key) -> Value: ...

    @rpc
    def Hold(self, request: Key) -> Value: ...

    @rpc
    def Forever(self, request: Key) -> Iterator[Value]: ...


def _released(path: str) -> bool:
    """Wait (bounded) until ``path`` exists: a call that stays in flight until the test says."""
    deadline = time.monotonic() + 30
    while not Path(path).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class KVServer:
    def Get(self, request: Key) -> Value:
        return Value(value=f"sync:{request.key}", pid=os.getpid())

    def Hold(self, request: Key) -> Value:
        print("holding", flush=True)
        return Value(value="released" if _released(request.key) else "timed out")

    def Forever(self, request: Key) -> Iterator[Value]:
        """A stream that never ends and never looks at its context, as some users write."""
        print("streaming", flush=True)
        while True:
            yield Value(value="tick")
            time.sleep(10)


class AsyncKVServer:
    async def Get(self, request: Key) -> Value:
        return Value(value=f"async:{request.key}", pid=os.getpid())

    async def Hold(self, request: Key) -> Value:
        print("holding", flush=True)
        released = await asyncio.to_thread(_released, request.key)
        return Value(value="released" if released else "timed out")

    async def Forever(self, request: Key) -> AsyncIterator[Value]:
        print("streaming", flush=True)
        while True:
            yield Value(value="tick")
            await asyncio.sleep(10)


binding = bind(KV, KVServer())


def async_bindings() -> list[Binding]:
    """A factory, as ``run`` accepts one."""
    return [bind(KV, AsyncKVServer())]


mixed = [bind(KV, KVServer()), bind(KV, AsyncKVServer())]
not_a_binding = KVServer()


async def async_factory() -> list[Binding]:
    """Not accepted: ``run`` calls the factory before it knows which server to start."""
    return async_bindings()


def seed_runner() -> Binding:
    """Seed 001 (RunnerProtocol), served by ``run`` as a user would serve it."""
    from transport.examples.runner.protocol import RunnerProtocol
    from transport.examples.runner.server import RunnerServer

    return bind(RunnerProtocol, RunnerServer())


class Stamp:
    """An interceptor, as ``run --interceptor tests.run_app:Stamp`` loads it.

    Refuses the key ``forbidden`` and stamps the trailing metadata with what it saw.
    """

    def intercept(
        self, call: ServerCall[Context], request: Key, proceed: Callable[[Key], Any]
    ) -> Any:
        if request.key == "forbidden":
            raise RpcError(StatusCode.PERMISSION_DENIED, "the key forbidden is not served")
        response = proceed(request)
        call.context.add_trailing_metadata([("x-stamp", f"{call.method.name}:{request.key}")])
        return response


class AsyncStamp:
    """:class:`Stamp` for the asyncio bindings."""

    async def intercept(
        self, call: ServerCall[AsyncContext], request: Key, proceed: Callable[[Key], Any]
    ) -> Any:
        if request.key == "forbidden":
            raise RpcError(StatusCode.PERMISSION_DENIED, "the key forbidden is not served")
        response = await proceed(request)
        call.context.add_trailing_metadata([("x-stamp", f"{call.method.name}:{request.key}")])
        return response


class Count:
    """A second interceptor, given as an object: counts calls in trailing metadata."""

    def __init__(self) -> None:
        self.calls = 0

    def intercept(
        self, call: ServerCall[Context], request: Key, proceed: Callable[[Key], Any]
    ) -> Any:
        self.calls += 1
        call.context.add_trailing_metadata([("x-count", str(self.calls))])
        return proceed(request)


count = Count()


def echo() -> Binding:
    """The echo service (one method of each call kind), for the metrics and access-log tests."""
    from tests.echo_service import Echo, EchoServer

    return bind(Echo, EchoServer())


def async_echo() -> Binding:
    """:func:`echo` on ``grpc.aio``."""
    from tests.echo_service import AsyncEchoServer, Echo

    return bind(Echo, AsyncEchoServer())
