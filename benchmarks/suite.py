"""The scenarios: which variants take part and what each round measures.

Rounds are interleaved (every variant once per round, in a rotated order) so
that drift in the machine's load lands on every variant alike.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .driver import Driver
from .report import Measurement

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """How much each scenario does per round."""

    rounds: int
    unary_calls: int
    concurrent_calls: int
    in_flight: int
    stream_count: int
    array_sizes: tuple[int, ...]
    array_bytes: int  # moved per variant and round: fewer calls for larger arrays
    scale_in_flight: tuple[int, ...] = (1, 10, 100, 1_000)
    scale_sizes: tuple[int, ...] = (1024, 64 * 1024, MIB)
    scale_bytes: int = 32 * MIB  # per cell, variant and round (at least one call per flight)

    @classmethod
    def quick(cls) -> Settings:
        """A few minutes on two cores."""
        return cls(3, 400, 3_000, 100, 10_000, (1 * MIB, 16 * MIB), 48 * MIB)

    @classmethod
    def full(cls) -> Settings:
        """More, shorter rounds (drift cancels better), and the 64 MiB array."""
        return cls(
            12,
            1_000,
            5_000,
            100,
            10_000,
            (1 * MIB, 16 * MIB, 64 * MIB),
            96 * MIB,
            scale_bytes=64 * MIB,
        )

    @classmethod
    def tiny(cls) -> Settings:
        """Enough to prove the suite runs; the numbers mean nothing."""
        return cls(1, 20, 200, 20, 200, (64 * 1024,), 128 * 1024, (1, 10), (1024,), 64 * 1024)


STREAMS = ("floor", "transport", "floor-asyncio", "transport-asyncio", "grpclib-json")
SCENARIOS: dict[str, tuple[str, ...]] = {
    "unary_small": (
        "floor",
        "transport",
        "transport-protobuf",
        "floor-asyncio",
        "transport-asyncio",
        "protobuf",
        "grpclib-json",
        "socket",
        "asyncio-tcp",
    ),
    "unary_concurrent": ("floor", "transport", "transport-asyncio", "protobuf", "grpclib-json"),
    "stream_small": (*STREAMS, "transport-protobuf", "protobuf", "socket", "asyncio-tcp"),
    "stream_short": STREAMS,
    "stream_trickle": STREAMS,
    # Before ndarray, whose 64 MiB arrays would stay in the servers' peak RSS.
    "scale": ("floor", "transport", "grpclib-json"),
    "ndarray": (
        "floor",
        "transport",
        "transport-protobuf",
        "transport-json",
        "transport-chunked",
        "transport-asyncio",
        "protobuf",
        "grpclib-json",
    ),
    # Last: the owner runtime is the newest part of the library.
    # floor-asyncio: the same bytes from a sync client (as the runtime's) to grpc.aio (as the
    # runtime's server): what the runtime's own work is measured against.
    # transport-fenced-sync: the same model as a sync backend (its calls on worker threads).
    "session_infer": (
        "floor",
        "floor-asyncio",
        "transport-unfenced",
        "transport-fenced",
        "transport-fenced-sync",
    ),
}
# The heaviest scale cells move a GiB per variant and round: three rounds are enough.
SCALE_ROUNDS = 3
# Messages of one trickle stream, and streams per round of the short-stream scenario.
TRICKLE_COUNT = 25
SHORT_STREAMS = 100


def _rss_mib(pid: int | str) -> float:
    """The peak resident set size of ``pid`` since its last reset, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_rss(pid: int | str) -> None:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


class Run:
    """Measurements of one benchmark run, filled scenario by scenario."""

    def __init__(
        self, drivers: dict[str, Driver], server_pids: dict[str, int], settings: Settings
    ) -> None:
        self.drivers = drivers
        self.server_pids = server_pids
        self.settings = settings
        self.measurements: list[Measurement] = []
        self._index: dict[tuple[str, str, str], Measurement] = {}

    def record(self, scenario: str, variant: str, metric: str, unit: str, value: float) -> None:
        """Add one round's ``value`` of ``metric``."""
        key = (scenario, variant, metric)
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = Measurement(scenario, variant, metric, unit)
            self.measurements.append(found)
        found.samples.append(value)

    def rounds(
        self,
        variants: Sequence[str],
        measure: Callable[[str, Driver], None],
        most: int | None = None,
    ) -> None:
        """Measure every variant once per round (at most ``most`` rounds), rotating the order."""
        for round_ in range(min(self.settings.rounds, most or self.settings.rounds)):
            shift = round_ % len(variants)
            for variant in (*variants[shift:], *variants[:shift]):
                measure(variant, self.drivers[variant])

    def unary_small(self, variants: Sequence[str]) -> None:
        """One call in flight: p50 and p99 latency."""
        calls = self.settings.unary_calls

        def measure(variant: str, driver: Driver) -> None:
            latencies = sorted(driver.unary(calls))
            p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
            self.record(
                "unary_small", variant, "p50_latency", "us", statistics.median(latencies) * 1e6
            )
            self.record("unary_small", variant, "p99_latency", "us", p99 * 1e6)

        for name in variants:
            self.drivers[name].unary(10)  # connect and warm up
        self.rounds(variants, measure)

    def unary_concurrent(self, variants: Sequence[str]) -> None:
        """Many calls in flight from asyncio: calls per second."""
        s = self.settings

        def measure(variant: str, driver: Driver) -> None:
            seconds = driver.concurrent(s.concurrent_calls, s.in_flight)
            self.record(
                "unary_concurrent", variant, "throughput", "calls/s", s.concurrent_calls / seconds
            )

        for name in variants:
            self.drivers[name].concurrent(s.in_flight, s.in_flight)
        self.rounds(variants, measure)

    def stream_small(self, variants: Sequence[str]) -> None:
        """Streams of small messages: messages per second, server, client and bidi streams.

        ``throughput`` is the server stream; variants that have no client or
        bidi stream (protobuf, the raw sockets) measure the server stream only.
        """
        count = self.settings.stream_count
        kinds = (
            ("throughput", "stream"),
            ("client_stream_throughput", "client_stream"),
            ("bidi_throughput", "bidi"),
        )

        def measure(variant: str, driver: Driver) -> None:
            for metric, kind in kinds:
                try:
                    seconds = getattr(driver, kind)(count)
                except NotImplementedError:
                    continue
                self.record("stream_small", variant, metric, "msgs/s", count / seconds)

        for name in variants:  # connect, warm up, and learn what the server reads
            for _, kind in kinds:
                try:
                    getattr(self.drivers[name], kind)(10)
                except NotImplementedError:
                    continue
        self.rounds(variants, measure)

    def stream_short(self, variants: Sequence[str]) -> None:
        """Server streams of 3 and of 20 messages, one after another: p50 time per stream."""
        calls = max(2, min(SHORT_STREAMS, self.settings.unary_calls // 4))

        def measure(variant: str, driver: Driver) -> None:
            for length in (3, 20):
                latencies = driver.short_streams(length, calls)
                median = statistics.median(latencies) * 1e6
                self.record("stream_short", variant, f"p50_latency_{length}", "us", median)

        for name in variants:
            self.drivers[name].short_streams(3, 5)
        self.rounds(variants, measure)

    def stream_trickle(self, variants: Sequence[str]) -> None:
        """A server stream of one message every 2 ms: p50 time from making to reading one."""

        def measure(variant: str, driver: Driver) -> None:
            delays = driver.trickle(TRICKLE_COUNT)
            assert len(delays) == TRICKLE_COUNT
            median = statistics.median(delays) * 1e6
            self.record("stream_trickle", variant, "p50_delivery", "us", median)

        for name in variants:
            self.drivers[name].trickle(2)
        self.rounds(variants, measure)

    def session_infer(self, variants: Sequence[str]) -> None:
        """A fenced owner-runtime Infer on a small array vs the same call unfenced."""
        calls = self.settings.unary_calls

        def measure(variant: str, driver: Driver) -> None:
            latencies = sorted(driver.infer(calls))
            p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
            median = statistics.median(latencies) * 1e6
            self.record("session_infer", variant, "p50_latency", "us", median)
            self.record("session_infer", variant, "p99_latency", "us", p99 * 1e6)

        for name in variants:
            self.drivers[name].infer(10)
        self.rounds(variants, measure)

    def ndarray(self, variants: Sequence[str]) -> None:
        """Round trips of float32 arrays: MiB/s and the peak RSS of client and server."""
        for size in self.settings.array_sizes:
            self.rounds(variants, functools.partial(self._array, size=size))

    def _array(self, variant: str, driver: Driver, *, size: int) -> None:
        label = f"{size // MIB}MiB" if size >= MIB else f"{size // 1024}KiB"
        server = self.server_pids[variant]
        _reset_rss("self")
        _reset_rss(server)
        seconds = driver.array(size, max(2, self.settings.array_bytes // size))
        self.record("ndarray", variant, f"throughput_{label}", "MiB/s", size / MIB / seconds)
        self.record("ndarray", variant, f"client_peak_rss_{label}", "MiB", _rss_mib("self"))
        self.record("ndarray", variant, f"server_peak_rss_{label}", "MiB", _rss_mib(server))

    def scale(self, variants: Sequence[str]) -> None:
        """Array echoes with 1 to 1,000 calls in flight: MiB/s and the server's peak RSS."""
        s = self.settings
        for size in s.scale_sizes:
            for in_flight in s.scale_in_flight:
                calls = max(1, min(2_000, s.scale_bytes // size) // in_flight) * in_flight
                cell = functools.partial(self._scale, size=size, in_flight=in_flight, calls=calls)
                self.rounds(variants, cell, SCALE_ROUNDS)

    def _scale(
        self, variant: str, driver: Driver, *, size: int, in_flight: int, calls: int
    ) -> None:
        label = f"{in_flight}x{size // MIB}MiB" if size >= MIB else f"{in_flight}x{size // 1024}KiB"
        server = self.server_pids[variant]
        _reset_rss(server)
        seconds = driver.scale(size, calls, in_flight)
        self.record("scale", variant, f"throughput_{label}", "MiB/s", calls * size / MIB / seconds)
        self.record("scale", variant, f"server_peak_rss_{label}", "MiB", _rss_mib(server))
