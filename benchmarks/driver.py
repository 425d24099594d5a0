"""What every variant's client answers, and the timing loops they share."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from transport.client.calls import multicallable_kwargs

# Registered methods skip grpcio's per-call method lookup (grpcio >= 1.63; older ones lack it).
REGISTERED: dict[str, Any] = multicallable_kwargs(
    importlib.import_module("grpc._channel").Channel.unary_unary
)
# The ndarray scenario sends up to 64 MiB in one message.
LIMITS: dict[str, Any] = {"max_send_message_bytes": -1, "max_receive_message_bytes": -1}


async def timed_calls(call: Callable[[], Awaitable[Any]], calls: int) -> list[float]:
    """The latency of each of ``calls`` awaited one after another, in seconds."""
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - start)
    return latencies


async def concurrently(call: Callable[[], Awaitable[Any]], calls: int, in_flight: int) -> float:
    """Seconds to await ``calls`` calls, ``in_flight`` at a time."""

    async def worker() -> None:
        for _ in range(calls // in_flight):
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.perf_counter() - start


def timed(call: Callable[[], Any], calls: int) -> float:
    """Seconds per call of ``calls`` calls made one after another."""
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


class Driver:
    """One variant's client; subclasses answer the scenarios that apply to them."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.variant = variant
        self.address = f"127.0.0.1:{port}"
        self.port = port
        self.loop = loop

    def unary(self, calls: int) -> list[float]:
        """The latency of each of ``calls`` calls made one after another, in seconds."""
        raise NotImplementedError

    def concurrent(self, calls: int, in_flight: int) -> float:
        """Seconds to make ``calls`` calls from asyncio with ``in_flight`` at a time."""
        raise NotImplementedError

    def stream(self, count: int) -> float:
        """Seconds to receive a server stream of ``count`` messages."""
        raise NotImplementedError

    def client_stream(self, count: int) -> float:
        """Seconds to send a client stream of ``count`` messages (and get its one answer)."""
        raise NotImplementedError

    def bidi(self, count: int) -> float:
        """Seconds to send ``count`` messages on a bidirectional stream and read their echoes."""
        raise NotImplementedError

    def short_streams(self, length: int, calls: int) -> list[float]:
        """The latency of each of ``calls`` server streams of ``length`` messages, in seconds."""
        raise NotImplementedError

    def trickle(self, count: int) -> list[float]:
        """For a server stream sending one message every 2 ms: each message's delivery time."""
        raise NotImplementedError

    def array(self, nbytes: int, calls: int) -> float:
        """Seconds per round trip of a float32 array of ``nbytes`` bytes."""
        raise NotImplementedError

    def scale(self, nbytes: int, calls: int, in_flight: int) -> float:
        """Seconds for ``calls`` echoes of a float32 array of ``nbytes``, ``in_flight`` at once."""
        raise NotImplementedError

    def infer(self, calls: int) -> list[float]:
        """The latency of each of ``calls`` owner-runtime Infer calls on a small array."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the channels."""
