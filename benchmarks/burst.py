"""Bursts on one channel, and what the rapid-reset protection bounds.

``python -m benchmarks.burst`` prints two tables.

Bursts: the asyncio test server, then the sync one (16 threads), each in its
own process with the library's protections, get ``--calls`` unary calls at
once from five clients in turn, ``--rounds`` times: the
library's ``AsyncClient`` (48 calls in flight, its default), the same with
``max_calls_in_flight=None``, the library's client making server-streaming
calls (3 responses each), a plain grpcio channel, and 32 plain grpcio channels
(each its own connection) with a tenth of ``--calls`` each. Prints each one's
outcomes over all rounds and the median seconds of a burst.

Resets: the asyncio test server with the default settings, with
``grpc.http.overload_protection`` on, and with 10,000 calls waiting allowed:
a rapid reset of 20,000 streams on one connection (the server's CPU), then 8
connections each open and reset ``--streams`` streams, 100 at a time 3 ms
apart, for ``--rounds`` rounds. Prints the server's peak RSS growth and its CPU
seconds per round. docs/reliability.md ("What a burst gets") quotes both tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import grpc
import grpc.aio

from transport import AsyncClient, RpcError, bind
from transport.interop import AsyncTestServiceServer, TestService, TestServiceServer
from transport.interop.messages import (
    ResponseParameters,
    SimpleRequest,
    StreamingOutputCallRequest,
)
from transport.testing import serve, serve_async

from .http2_attacks import paced_reset, rapid_reset

UNARY = "/grpc.testing.TestService/UnaryCall"
REQUEST = SimpleRequest(response_size=8)
Burst = Callable[[str, int], Coroutine[Any, Any, Counter[str]]]


# --- the servers, each in its own process


async def _serve_async(options: list[tuple[str, int]]) -> None:
    async with serve_async(bind(TestService, AsyncTestServiceServer()), options=options) as server:
        print(server.address, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _serve_sync(options: list[tuple[str, int]]) -> None:
    with serve(bind(TestService, TestServiceServer()), max_workers=16, options=options) as server:
        print(server.address, flush=True)
        sys.stdin.read()


class Server:
    """A test server in a child process that ends when its stdin closes."""

    def __init__(self, kind: str, options: Sequence[tuple[str, int]] = ()) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.burst", "--serve", kind, json.dumps(list(options))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.address = self.process.stdout.readline().strip()

    def cpu_seconds(self) -> float:
        """User + system CPU of the server so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        """The server's peak resident memory (VmHWM)."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    def close(self) -> None:
        """Close its stdin, wait for it, and close its stdout."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(10)
        self.process.stdout.close()


# --- bursts


async def _ours(address: str, calls: int, bound: int | None) -> Counter[str]:
    async with AsyncClient.connect(address, max_calls_in_flight=bound) as client:
        await client.call(TestService.UnaryCall, SimpleRequest(), timeout=30)  # connected

        async def one() -> str:
            try:
                await client.call(TestService.UnaryCall, REQUEST, timeout=60)
            except RpcError as exc:
                return _label(exc.code.name, exc.message)
            return "OK"

        return Counter(await asyncio.gather(*(one() for _ in range(calls))))


async def _ours_streams(address: str, calls: int) -> Counter[str]:
    request = StreamingOutputCallRequest(response_parameters=[ResponseParameters(size=8)] * 3)
    async with AsyncClient.connect(address) as client:
        await client.call(TestService.UnaryCall, SimpleRequest(), timeout=30)  # connected

        async def one() -> str:
            try:
                call = client.call(TestService.StreamingOutputCall, request, timeout=60)
                if len([response async for response in call]) != 3:
                    return "SHORT"
            except RpcError as exc:
                return _label(exc.code.name, exc.message)
            return "OK"

        return Counter(await asyncio.gather(*(one() for _ in range(calls))))


async def _plain(address: str, calls: int) -> Counter[str]:
    async with grpc.aio.insecure_channel(address) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(UNARY)
        await call(b"{}", timeout=30)  # connected

        async def one() -> str:
            try:
                await call(b'{"responseSize": 8}', timeout=60)
            except grpc.aio.AioRpcError as exc:
                return _label(exc.code().name, exc.details() or "")
            return "OK"

        return Counter(await asyncio.gather(*(one() for _ in range(calls))))


async def _plain_connections(address: str, calls: int, connections: int = 32) -> Counter[str]:
    """``calls`` at once on each of ``connections`` plain grpcio channels (own connections)."""
    own = [("grpc.use_local_subchannel_pool", 1)]  # not shared with the other channels
    channels = [grpc.aio.insecure_channel(address, options=own) for _ in range(connections)]
    try:
        calls_of: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            channel.unary_unary(UNARY) for channel in channels
        ]
        await asyncio.gather(*(call(b"{}", timeout=30) for call in calls_of))  # connected

        async def one(call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]) -> str:
            try:
                await call(b'{"responseSize": 8}', timeout=60)
            except grpc.aio.AioRpcError as exc:
                return _label(exc.code().name, exc.details() or "")
            return "OK"

        return Counter(await asyncio.gather(*(one(c) for c in calls_of for _ in range(calls))))
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))


def _label(code: str, message: str) -> str:
    return f"{code} (refused)" if "error code 7" in message else code


CLIENTS: dict[str, Burst] = {
    "transport (48 in flight)": lambda address, calls: _ours(address, calls, 48),
    "transport, no bound": lambda address, calls: _ours(address, calls, None),
    "transport, server streams": _ours_streams,
    "plain grpcio": _plain,
    # A tenth of the calls on each of 32 connections: 6,400 at the default.
    "plain grpcio, 32 connections": lambda address, calls: _plain_connections(address, calls // 10),
}


def bursts(calls: int, rounds: int) -> None:
    """Print the bursts table."""
    print(f"\n{calls} calls at once on one channel, {rounds} rounds\n")
    print("| server | client | outcomes | seconds (median) |")
    print("|---|---|---|---|")
    for kind in ("asyncio", "sync"):
        server = Server(kind)
        try:
            outcomes = {name: Counter[str]() for name in CLIENTS}
            seconds: dict[str, list[float]] = {name: [] for name in CLIENTS}
            for _ in range(rounds):
                for name, burst in CLIENTS.items():
                    started = time.perf_counter()
                    outcomes[name] += asyncio.run(burst(server.address, calls))
                    seconds[name].append(time.perf_counter() - started)
            for name in CLIENTS:
                told = ", ".join(f"{code} {count}" for code, count in outcomes[name].most_common())
                median = statistics.median(seconds[name])
                print(f"| {kind} | {name} | {told} | {median:.2f} |")
        finally:
            server.close()


# --- resets


#: The server settings the resets table compares, by overload protection and
#: calls waiting: the default first.
SETTINGS: dict[tuple[str, str], list[tuple[str, int]]] = {
    ("off", "1,000 (default)"): [],
    ("on", "1,000"): [("grpc.http.overload_protection", 1)],
    ("off", "10,000"): [
        ("grpc.server.max_pending_requests", 10_000),
        ("grpc.server.max_pending_requests_hard_limit", 20_000),
    ],
}


def _settled_cpu(server: Server, timeout: float = 10.0) -> float:
    """The server's CPU once it has been all but idle for 0.2 s."""
    last = server.cpu_seconds()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = server.cpu_seconds()
        if now - last <= 0.02:
            return now
        last = now
    return last


def resets(streams: int, rounds: int, connections: int = 8) -> None:
    """Print the resets table: a rapid reset's CPU, then paced resets' memory and CPU."""
    print(
        f"\nRapid reset: 20,000 streams on one connection. Paced: {connections} connections"
        f" x {streams} reset streams, 100 at a time 3 ms apart\n"
    )
    print(
        "| overload protection | calls waiting | rapid reset CPU (s)"
        " | paced: peak RSS growth after each round (MiB) | paced: CPU per round (s) |"
    )
    print("|---|---|---|---|---|")
    for (protection, waiting), options in SETTINGS.items():
        server = Server("asyncio", options)
        try:
            before = _settled_cpu(server)
            rapid_reset(server.address, UNARY, streams=20_000)
            rapid = _settled_cpu(server) - before
            start = server.peak_rss_mib()
            growth, cpu = [], []
            for _ in range(rounds):
                before = server.cpu_seconds()
                attackers = [
                    threading.Thread(target=paced_reset, args=(server.address, UNARY, streams))
                    for _ in range(connections)
                ]
                for attacker in attackers:
                    attacker.start()
                for attacker in attackers:
                    attacker.join(120)
                growth.append(server.peak_rss_mib() - start)
                cpu.append(server.cpu_seconds() - before)
            grown = ", ".join(f"{mib:.0f}" for mib in growth)
            spent = ", ".join(f"{seconds:.2f}" for seconds in cpu)
            print(f"| {protection} | {waiting} | {rapid:.2f} | {grown} | {spent} |")
        finally:
            server.close()


def main() -> None:
    """Parse the command line and print both tables (or serve, in a child process)."""
    parser = argparse.ArgumentParser(description="Bursts on one channel, and resets.")
    parser.add_argument("--calls", type=int, default=2_000)
    parser.add_argument("--streams", type=int, default=2_500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "OPTIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind = args.serve[0]
        options = [(str(name), int(value)) for name, value in json.loads(args.serve[1])]
        if kind == "asyncio":
            asyncio.run(_serve_async(options))
        else:
            _serve_sync(options)
        return
    if args.tiny:
        args.calls, args.streams, args.rounds = 100, 200, 1
    bursts(args.calls, args.rounds)
    resets(args.streams, args.rounds)


if __name__ == "__main__":
    main()
