"""The protections of every server the library builds: HTTP/2 limits, pending calls, call limits."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Callable

import grpc
import grpc.aio
import pytest
from h2.errors import ErrorCodes

from benchmarks.burst import UNARY, Server
from benchmarks.http2_attacks import (
    IdleStreams,
    paced_reset,
    rapid_reset,
    silent_connection_lifetime,
    until_closed,
)
from transport import AsyncClient, Client, RpcError, StatusCode, bind
from transport.interop import AsyncTestServiceServer, TestService, TestServiceServer
from transport.interop.messages import SimpleRequest
from transport.options import SERVER_PROTECTIONS, grpc_options, server_options
from transport.runtime import NoneBackend, running
from transport.runtime.process import DaemonProcess
from transport.runtime.wire import HealthRequest, Runtime
from transport.testing import serve, serve_async

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (fields 14 and 15 of its stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _settled_cpu(pid: int, timeout: float = 10.0) -> float:
    """The CPU of ``pid`` once it is all but idle for 0.2 s (work queued by a flood included).

    All but: a paced bystander client keeps it at a few percent.
    """
    last = _cpu_seconds(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = _cpu_seconds(pid)
        if now - last <= 0.02:
            return now
        last = now
    return last


def test_server_options_hold_each_protection_once_and_each_can_be_changed() -> None:
    options = dict(server_options())
    assert len(options) == len(server_options())
    for name, value in SERVER_PROTECTIONS.items():
        assert options[name] == value
    changed = dict(server_options(extra=[("grpc.max_concurrent_streams", 7), ("grpc.x", 1)]))
    assert changed["grpc.max_concurrent_streams"] == 7 and changed["grpc.x"] == 1
    assert dict(grpc_options()).keys() <= options.keys()  # the message limits too
    assert "grpc.max_concurrent_streams" not in dict(grpc_options())  # clients: no server args


@pytest.mark.slow
def test_rapid_reset_costs_the_daemon_little_and_no_other_call_is_cancelled() -> None:
    with DaemonProcess("--instance-id", "") as daemon:
        daemon.wait_ready()
        seen: Counter[StatusCode] = Counter()
        stop = threading.Event()

        def another_client() -> None:  # a paced, well-behaved client on its own connection
            with Client.connect(daemon.endpoint, timeout=5) as client:
                while not stop.is_set():
                    try:
                        client.call(Runtime.Health, HealthRequest())
                        seen[StatusCode.OK] += 1
                    except RpcError as exc:
                        seen[exc.code] += 1
                    stop.wait(0.02)

        bystander = threading.Thread(target=another_client)
        bystander.start()
        try:
            before = _settled_cpu(daemon.pid)
            outcome = rapid_reset(daemon.endpoint, "/transport.v1.Runtime/Health", streams=20_000)
            spent = _settled_cpu(daemon.pid) - before
        finally:
            stop.set()
            bystander.join(10)
        assert outcome.streams_sent == 20_000 or outcome.goaway
        # Unprotected, such a flood cost this daemon 0.45-0.7 s of CPU (and 0.8-1.4 s
        # when paced 100 streams at a time); protected, 0.01-0.07 s (0.2-0.4 s paced).
        assert spent < 0.3, f"the rapid reset cost the daemon {spent:.2f} s of CPU"
        assert seen[StatusCode.OK] > 0
        assert set(seen) == {StatusCode.OK}, seen
        assert daemon.health() is not None


@pytest.mark.slow
def test_the_daemon_refuses_calls_beyond_max_concurrent_calls() -> None:
    # One call at a time: of a burst, some end RESOURCE_EXHAUSTED, the rest OK.
    with DaemonProcess("--instance-id", "", "--max-concurrent-calls", "1") as daemon:
        daemon.wait_ready()
        with Client.connect(daemon.endpoint, timeout=10) as client:
            codes = _burst(lambda: client.call(Runtime.Health, HealthRequest()), 64)
        assert set(codes) == {StatusCode.OK, StatusCode.RESOURCE_EXHAUSTED}, codes


def test_max_concurrent_calls_must_be_positive_or_zero_for_none() -> None:
    with pytest.raises(RuntimeError, match="did not start"):
        DaemonProcess("--max-concurrent-calls", "-1")


def _burst(call: Callable[[], object], count: int) -> Counter[StatusCode]:
    codes: Counter[StatusCode] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(count)

    def one() -> None:
        start.wait(10)
        try:
            call()
            code = StatusCode.OK
        except RpcError as exc:
            code = exc.code
        with lock:
            codes[code] += 1

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return codes


async def _calls(client: AsyncClient, count: int, at_once: int) -> Counter[str]:
    """``count`` unary calls on the client's one channel, at most ``at_once`` in flight."""
    await client.call(TestService.UnaryCall, SimpleRequest(), timeout=30)  # connected
    gate = asyncio.Semaphore(at_once)

    async def one() -> str:
        async with gate:
            try:
                await client.call(TestService.UnaryCall, SimpleRequest(response_size=8), timeout=60)
            except RpcError as exc:
                refused = "REFUSED" if "error code 7" in exc.message else ""
                return f"{exc.code.name}{refused}"
            return "OK"

    return Counter(await asyncio.gather(*(one() for _ in range(count))))


async def _plain_burst(address: str, count: int) -> Counter[str]:
    """``count`` unary calls at once on one plain grpcio channel (no bound of ours)."""
    async with grpc.aio.insecure_channel(address) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/grpc.testing.TestService/UnaryCall"
        )
        await call(b"{}", timeout=30)  # connected

        async def one() -> str:
            try:
                await call(b'{"responseSize": 8}', timeout=60)
            except grpc.aio.AioRpcError as exc:
                refused = "REFUSED" if "error code 7" in (exc.details() or "") else ""
                return f"{exc.code().name}{refused}"
            return "OK"

        return Counter(await asyncio.gather(*(one() for _ in range(count))))


@pytest.mark.slow
@pytest.mark.anyio
async def test_up_to_32_calls_at_once_on_one_channel_are_never_refused() -> None:
    async with serve_async(bind(TestService, AsyncTestServiceServer())) as server:
        assert await _calls(server.client, 1_000, 32) == {"OK": 1_000}
    with serve(bind(TestService, TestServiceServer()), max_workers=16) as sync_server:
        async with AsyncClient.connect(sync_server.address) as client:
            assert await _calls(client, 1_000, 32) == {"OK": 1_000}


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_burst_of_2000_calls_on_one_channel_is_served_whole() -> None:
    # Before the protections, 1-11 % of such a burst ended CANCELLED (grpc-core's
    # queue of calls not yet taken by the application overflowed); with
    # grpc-core's overload protection on, a plain client was refused at the bound.
    async with serve_async(bind(TestService, AsyncTestServiceServer())) as server:
        # The library's client keeps 48 calls in flight and the rest wait their turn.
        assert await _calls(server.client, 2_000, 2_000) == {"OK": 2_000}
        # A plain grpcio client puts all of them on the connection, up to the
        # 64-stream bound, and opens a stream as soon as it has seen one end.
        assert await _plain_burst(server.address, 2_000) == {"OK": 2_000}


@pytest.mark.slow
def test_paced_resets_on_8_connections_hold_little_memory() -> None:
    # Streams opened and reset 100 at a time slip past the stream bound; the
    # bound on calls waiting for the application bounds what they hold. With
    # 10,000 waiting allowed (and no overload protection) the server grew by
    # 143-153 MiB here.
    server = Server("asyncio")
    try:
        start = server.peak_rss_mib()
        attackers = [
            threading.Thread(target=paced_reset, args=(server.address, UNARY, 2_500))
            for _ in range(8)
        ]
        for attacker in attackers:
            attacker.start()
        for attacker in attackers:
            attacker.join(60)
        grown = server.peak_rss_mib() - start
        assert grown < 64, f"paced resets grew the server by {grown:.0f} MiB"
    finally:
        server.close()


@pytest.mark.anyio
async def test_running_refuses_a_concurrent_call_limit_below_one() -> None:
    with pytest.raises(ValueError, match="max_concurrent_calls must be at least 1"):
        async with running(NoneBackend(), max_concurrent_calls=0):
            pass


# --- what each protection does, each made short enough to see here

QUICK = [("grpc.server_handshake_timeout_ms", 300), ("grpc.max_connection_idle_ms", 500)]


@pytest.mark.anyio
async def test_silent_idle_and_pinging_connections_are_closed() -> None:
    async with serve_async(bind(TestService, AsyncTestServiceServer()), options=QUICK) as server:
        # Slowloris: a connection that never sends the HTTP/2 preface.
        assert 0.2 < await asyncio.to_thread(silent_connection_lifetime, server.address) < 5
        # An idle connection: GOAWAY, after which clients reconnect on their next call.
        idle = await asyncio.to_thread(until_closed, server.address)
        assert idle.error_code is not None and 0.4 < idle.after < 5
        # A PING flood: pings without data are strikes; after two, GOAWAY.
        flood = await asyncio.to_thread(until_closed, server.address, pings=10)
        assert (flood.error_code, flood.debug) == (ErrorCodes.ENHANCE_YOUR_CALM, b"too_many_pings")
        assert flood.after < 0.4  # long before the idle timeout
        # Well-behaved clients go on being served.
        await server.client.call(TestService.UnaryCall, SimpleRequest(), timeout=10)


@pytest.mark.slow
def test_header_lists_past_8_kib_may_and_past_16_kib_are_refused() -> None:
    with serve(bind(TestService, TestServiceServer())) as server:

        def codes(size: int) -> set[StatusCode]:
            seen = set()
            for _ in range(8):
                try:
                    server.client.call(
                        TestService.UnaryCall, SimpleRequest(), metadata=[("x-big", "a" * size)]
                    )
                    seen.add(StatusCode.OK)
                except RpcError as exc:
                    seen.add(exc.code)
            return seen

        assert codes(6_000) == {StatusCode.OK}
        assert codes(12_000) <= {StatusCode.OK, StatusCode.RESOURCE_EXHAUSTED}
        # Past the hard limit every call fails; the server may close the connection too.
        hard = codes(20_000)
        assert StatusCode.RESOURCE_EXHAUSTED in hard and StatusCode.OK not in hard


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_idle_streams_beyond_the_default_call_limit_are_resource_exhausted() -> None:
    # 5 connections of 60 streams that never send their request: 300 calls
    # waiting, 256 of them served (the default limit), 44 refused at once.
    with DaemonProcess("--instance-id", "") as daemon:
        daemon.wait_ready()
        before = _rss_mib(daemon.pid)
        idle = IdleStreams(
            daemon.endpoint, "/transport.v1.Runtime/Health", connections=5, per_connection=60
        )
        try:
            deadline = time.monotonic() + 15
            while len(idle.statuses) < 44 and time.monotonic() < deadline:
                idle.read()
                time.sleep(0.01)
            assert idle.statuses == ["8"] * 44  # RESOURCE_EXHAUSTED
            grown = _rss_mib(daemon.pid) - before
            assert grown < 30, f"300 idle streams grew the daemon by {grown:.0f} MiB"
        finally:
            idle.close()
        # The limit counts every call, Health too; closing the connections frees it.
        daemon.wait_ready(timeout=10)
