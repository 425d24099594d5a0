"""``python -m transport demo``: every call kind over loopback, printed as it happens.

Then the owner story (:mod:`transport.cli.demo_owner`); ``--core`` is this part
alone, ``--owner`` that one alone.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import grpc
import numpy as np

from .. import AsyncContext, Context, Message, RpcError, Service, StatusCode, bind, rpc
from ..testing import serve, serve_async
from .demo_owner import run as run_owner_story


class Reading(Message):
    """One sensor reading."""

    sensor: str
    values: np.ndarray


class Summary(Message):
    """What the server made of some readings."""

    sensor: str
    count: int = 0
    mean: float = 0.0


class Telemetry(Service, Protocol, name="demo.v1.Telemetry"):
    """A small service with one method of each kind."""

    @rpc
    def Summarise(self, request: Reading) -> Summary:
        """One reading in, its summary out (unary)."""

    @rpc
    def Replay(self, request: Summary) -> Iterator[Reading]:
        """``request.count`` readings of the sensor (server streaming)."""

    @rpc
    def Upload(self, requests: Iterator[Reading]) -> Summary:
        """Many readings in, one summary out (client streaming)."""

    @rpc
    def Live(self, requests: Iterator[Reading]) -> Iterator[Summary]:
        """A summary for each reading, as it comes (bidirectional)."""


def _summary(reading: Reading) -> Summary:
    if reading.values.size == 0:
        raise RpcError(StatusCode.INVALID_ARGUMENT, "no values", {"sensor": reading.sensor})
    where = {"sensor": reading.sensor}
    if reading.values.dtype.kind == "c":  # a complex mean has no place in a float field
        raise RpcError(StatusCode.INVALID_ARGUMENT, "values must be real", where)
    with np.errstate(all="ignore"):  # NaN and infinities are refused just below
        mean = float(reading.values.mean(dtype=np.float64))
    if not np.isfinite(mean):  # JSON has no NaN: it would travel as null
        raise RpcError(StatusCode.INVALID_ARGUMENT, "values must be finite", where)
    return Summary(sensor=reading.sensor, count=reading.values.size, mean=mean)


class TelemetryServer:
    """The synchronous implementation."""

    def Summarise(self, request: Reading, context: Context) -> Summary:
        """Summarise one reading."""
        context.set_trailing_metadata([("x-served-by", "sync")])
        return _summary(request)

    def Replay(self, request: Summary, context: Context) -> Iterator[Reading]:
        """Stream ``count`` readings back."""
        for i in range(request.count):
            yield Reading(sensor=request.sensor, values=np.full(3, float(i), dtype=np.float32))

    def Upload(self, requests: Iterator[Reading], context: Context) -> Summary:
        """Summarise a whole upload."""
        values = [r.values.ravel() for r in requests]
        merged = np.concatenate(values) if values else np.zeros(0)
        return _summary(Reading(sensor="upload", values=merged))

    def Live(self, requests: Iterator[Reading], context: Context) -> Iterator[Summary]:
        """Answer each reading as it arrives."""
        for reading in requests:
            yield _summary(reading)


class AsyncTelemetryServer:
    """The asyncio implementation of the same declaration."""

    async def Summarise(self, request: Reading, context: AsyncContext) -> Summary:
        """Summarise one reading."""
        return _summary(request)

    async def Replay(self, request: Summary, context: AsyncContext) -> AsyncIterator[Reading]:
        """Stream ``count`` readings back."""
        for i in range(request.count):
            yield Reading(sensor=request.sensor, values=np.arange(i + 1, dtype=np.int16))

    async def Upload(self, requests: AsyncIterator[Reading], context: AsyncContext) -> Summary:
        """Summarise a whole upload."""
        values = [r.values.ravel() async for r in requests]
        return _summary(Reading(sensor="upload", values=np.concatenate(values)))

    async def Live(
        self, requests: AsyncIterator[Reading], context: AsyncContext
    ) -> AsyncIterator[Summary]:
        """Answer each reading as it arrives."""
        async for reading in requests:
            yield _summary(reading)


def _sync_demo() -> None:
    with serve(bind(Telemetry, TelemetryServer())) as server:
        client = server.client
        print(f"sync server on {server.address}")
        reading = Reading(sensor="t1", values=np.array([[1.0, 2.0], [3.0, 4.0]]))
        summary, info = client.with_call(Telemetry.Summarise, reading)
        print(f"  unary-unary   Summarise -> {summary}  trailing={info.trailing_metadata}")
        replayed = list(client.call(Telemetry.Replay, Summary(sensor="t1", count=3)))
        print(f"  unary-stream  Replay    -> {len(replayed)} readings, last {replayed[-1].values}")
        uploaded = client.call(Telemetry.Upload, iter([reading, reading]))
        print(f"  stream-unary  Upload    -> {uploaded}")
        live = [s.mean for s in client.call(Telemetry.Live, iter([reading, reading]))]
        print(f"  stream-stream Live      -> means {live}")
        try:
            client.call(Telemetry.Summarise, Reading(sensor="empty", values=np.zeros(0)))
        except RpcError as exc:
            print(f"  handler error           -> {exc.code.name}: {exc.message} {exc.details}")
        raw: Any = server.client.channel.unary_unary("/demo.v1.Telemetry/Summarise")
        try:
            raw(b'{"sensor": 7}')
        except grpc.RpcError as exc:
            print(f"  bad request (raw JSON)  -> {exc.code().name}: {exc.details()}")


async def _async_demo() -> None:
    async with serve_async(bind(Telemetry, AsyncTelemetryServer())) as server:
        client = server.client
        print(f"asyncio server on {server.address}")
        reading = Reading(sensor="a1", values=np.linspace(0, 1, 5, dtype=np.float64))
        print(f"  unary-unary   Summarise -> {await client.call(Telemetry.Summarise, reading)}")
        replay = client.call(Telemetry.Replay, Summary(sensor="a1", count=3))
        shapes = [r.values.shape async for r in replay]
        print(f"  unary-stream  Replay    -> shapes {shapes}")
        print(f"  stream-unary  Upload    -> {await client.call(Telemetry.Upload, [reading] * 2)}")
        stream = client.open(Telemetry.Live)
        await stream.write(reading)
        first = await stream.read()
        await stream.done_writing()
        print(f"  stream-stream Live      -> {first} then {await stream.read()}")
        # The server waits for readings that never come, until the deadline.
        silent = client.open(Telemetry.Live, timeout=0.05)
        try:
            await silent.read()
        except RpcError as exc:
            print(f"  50 ms deadline, silent  -> {exc.code.name}")


def run() -> None:
    """Run the core demo: a sync and an asyncio server, every call kind, errors."""
    _sync_demo()
    asyncio.run(_async_demo())


def add_command(commands: Any) -> None:
    """Add ``demo`` to the subcommands of ``python -m transport``."""
    demo = commands.add_parser("demo", help="every call kind over loopback, then the owner story")
    demo.add_argument("--core", action="store_true", help="only the core demo (every call kind)")
    demo.add_argument("--owner", action="store_true", help="only the owner story (takeover)")
    demo.add_argument(
        "--etcd",
        action="store_true",
        help="the owner story on a three-member etcd cluster it starts (needs etcd installed)",
    )
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if not (args.owner or args.etcd):
        run()
    if not args.core:
        run_owner_story(etcd=args.etcd)
    return 0
