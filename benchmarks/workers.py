"""What ``python -m transport run --workers N`` gains: calls per second with 1 and 2 workers.

``python benchmarks/workers.py [--seconds S] [--rounds R] [--tiny]`` serves a
service whose handler spends about a millisecond of pure-Python CPU (so one
process is bound by its GIL) with ``run --workers 1`` and ``--workers 2``,
and drives each from client processes (each thread on its own connection, so
SO_REUSEPORT spreads them), alternating the two over several rounds. It prints
the median calls per second of each and the ratio. On a machine with other
work running the gain is below the number of cores; the load average is shown.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from transport import Client, Message, Service, bind, grpc_options, rpc

ROOT = Path(__file__).resolve().parent.parent


class Work(Message):
    rounds: int = 0


class Done(Message):
    total: int = 0


class Crunch(Service, Protocol, name="bench.workers.Crunch"):
    @rpc
    def Run(self, request: Work) -> Done: ...


class CrunchServer:
    def Run(self, request: Work) -> Done:
        total = 0
        for value in range(request.rounds):  # CPU under the GIL, as Python handlers are
            total += value * value % 7
        return Done(total=total)


binding = bind(Crunch, CrunchServer())


def _serve(workers: int) -> tuple[subprocess.Popen[str], str]:
    command = ["-m", "transport", "run", "benchmarks.workers:binding", "--port", "0"]
    process = subprocess.Popen(
        [sys.executable, *command, "--workers", str(workers)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise RuntimeError(f"run --workers {workers} did not start: {line!r}")
    return process, line.removeprefix("listening on ")


def own_connection(address: str) -> grpc.Channel:
    """A channel on a connection of its own.

    grpc-core gives channels with the same target and options one shared
    connection (its global subchannel pool), which would put every thread of
    a process on one worker.
    """
    options = grpc_options(extra=[("grpc.use_local_subchannel_pool", 1)])
    return grpc.insecure_channel(address, options=options)


def _client(
    address: str, threads: int, seconds: float, rounds: int, counts: multiprocessing.Queue[int]
) -> None:
    """One client process: ``threads`` threads, each on its own connection, calling until done."""
    deadline = time.monotonic() + seconds
    done = [0] * threads

    def drive(index: int) -> None:
        with Client(own_connection(address), timeout=30, owns_channel=True) as client:
            client.call(Crunch.Run, Work(rounds=1))  # connected before the clock matters
            while time.monotonic() < deadline:
                client.call(Crunch.Run, Work(rounds=rounds))
                done[index] += 1

    pool = [threading.Thread(target=drive, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    counts.put(sum(done))


def measure(address: str, *, processes: int, threads: int, seconds: float, rounds: int) -> float:
    """Calls per second that ``processes`` x ``threads`` closed-loop clients get."""
    counts: multiprocessing.Queue[int] = multiprocessing.Queue()
    clients = [
        multiprocessing.Process(target=_client, args=(address, threads, seconds, rounds, counts))
        for _ in range(processes)
    ]
    started = time.monotonic()
    for client in clients:
        client.start()
    total = sum(counts.get(timeout=seconds + 60) for _ in clients)
    for client in clients:
        client.join()
    return total / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per setting")
    parser.add_argument("--work", type=int, default=20_000, help="loop iterations per call")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per client process")
    parser.add_argument("--tiny", action="store_true", help="a smoke run (numbers mean nothing)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.seconds, args.rounds, args.work, args.threads = 0.5, 1, 100, 2
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} before", flush=True)
    servers = {workers: _serve(workers) for workers in (1, 2)}
    results: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(args.rounds):
            for workers, (_, address) in servers.items():
                rate = measure(
                    address,
                    processes=args.clients,
                    threads=args.threads,
                    seconds=args.seconds,
                    rounds=args.work,
                )
                results[workers].append(rate)
                print(f"  workers {workers}: {rate:8.0f} calls/s", flush=True)
    finally:
        for process, _ in servers.values():
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    one, two = (statistics.median(results[workers]) for workers in (1, 2))
    # Rounds back to back see the same background load: their ratio is steadier.
    ratios = [b / a for a, b in zip(results[1], results[2], strict=True)]
    print(f"load average {os.getloadavg()[0]:.2f} after")
    print("| workers | calls/s (median) | x 1 worker |")
    print("|---|---|---|")
    print(f"| 1 | {one:.0f} | 1.00 |")
    print(f"| 2 | {two:.0f} | {two / one:.2f} |")
    print(
        f"per-round ratio: median {statistics.median(ratios):.2f}, "
        f"range {min(ratios):.2f}-{max(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
