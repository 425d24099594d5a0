"""Takeover times of daemons on a three-member etcd cluster: after SIGKILL, after SIGTERM.

Starts etcd members and daemons on loopback, then, each round, stops the owner
(SIGKILL, or SIGTERM for a graceful stop) and times how long until another
daemon answers a fenced call; a fresh daemon replaces the stopped one. Needs
the ``etcd`` binary. Run: ``python benchmarks/takeover_etcd.py [--rounds N] [--ttl S]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transport.errors import RpcError  # noqa: E402
from transport.runtime import Client, OpenSessionRequest  # noqa: E402
from transport.runtime.etcd_local import EtcdCluster  # noqa: E402
from transport.runtime.process import DaemonProcess, wait_for  # noqa: E402

ECHO = OpenSessionRequest(type="echo")


def serving(daemon: DaemonProcess) -> bool:
    """Whether ``daemon`` answers a call fenced on itself."""
    with Client(daemon.endpoint, daemon.name, timeout=0.5) as client:
        try:
            client.describe(ECHO)
        except RpcError:
            return False
        return True


def owner(daemons: list[DaemonProcess], timeout: float) -> DaemonProcess:
    """The daemon that serves (waits for one)."""
    found: list[DaemonProcess] = []

    def one_serves() -> bool:
        found[:] = [daemon for daemon in daemons if serving(daemon)]
        return bool(found)

    wait_for(one_serves, timeout, "an owner")
    return found[0]


def measure(rounds: int, ttl: float) -> dict[str, list[float]]:
    """Seconds from stopping the owner to another one serving, per way of stopping."""
    times: dict[str, list[float]] = {"SIGKILL": [], "SIGTERM": []}
    names = count()
    with tempfile.TemporaryDirectory() as directory, EtcdCluster(Path(directory)) as cluster:
        url = cluster.url("bench")

        def start() -> DaemonProcess:
            name = f"d{next(names)}"
            args = ("--listen", "127.0.0.1:0", "--lease", url, "--lease-ttl", str(ttl))
            return DaemonProcess(*args, "--instance-id", name, name=name)

        daemons = [start() for _ in range(3)]
        try:
            for _ in range(rounds):
                for way in times:
                    current = owner(daemons, 30)
                    rest = [d for d in daemons if d is not current]
                    began = time.monotonic()
                    if way == "SIGKILL":
                        current.kill()
                    else:
                        current.process.terminate()
                    owner(rest, 30)
                    times[way].append(time.monotonic() - began)
                    current.close()
                    daemons = [*rest, start()]
        finally:
            for daemon in daemons:
                daemon.close()
    return times


def main(argv: list[str] | None = None) -> int:
    """Measure and print the takeover times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--ttl", type=float, default=2.0, help="lease TTL in seconds")
    args = parser.parse_args(argv)
    times = measure(args.rounds, args.ttl)
    print(f"takeover on a three-member etcd cluster, lease TTL {args.ttl} s, {args.rounds} rounds")
    for way, seconds in times.items():
        print(
            f"after {way}: median {statistics.median(seconds):.2f} s, "
            f"min {min(seconds):.2f} s, max {max(seconds):.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
