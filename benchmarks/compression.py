"""When gzip pays: bytes on the wire and call time, with and without it, over loopback.

``python -m benchmarks.compression`` echoes a 1 MiB compressible text and
1 MiB of random bytes, on each wire, with and without gzip, and prints the
bytes that crossed a relay and the median call time. Loopback moves bytes
almost for free, so the time column shows gzip's CPU cost; on a real link
divide the bytes by its bandwidth and add that.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time
from typing import Annotated, Protocol

from transport import Client, Message, Service, bind, rpc
from transport.encoding.protobuf import Number
from transport.testing import serve


class Blob(Message):
    """A text or bytes payload."""

    text: Annotated[str, Number(1)] = ""
    data: Annotated[bytes, Number(2)] = b""


class Echo(Service, Protocol, name="bench.v1.Compression"):
    """Echoes a blob."""

    @rpc
    def Say(self, request: Blob) -> Blob: ...


class EchoImpl:
    def Say(self, request: Blob) -> Blob:
        return request


class Relay:
    """Forwards one port to another, counting the bytes both ways."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.bytes = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            for ends in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=ends, daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.bytes += len(data)
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._listener.close()


def measure(size: int, calls: int) -> list[tuple[str, str, str, int, float]]:
    """Rows of (payload, wire, compression, bytes per call, median ms per call)."""
    payloads = {
        "compressible text": Blob(text=("the quick brown fox " * (size // 20 + 1))[:size]),
        "random bytes": Blob(data=os.urandom(size)),
    }
    rows = []
    for compression in (None, "gzip"):
        with serve(bind(Echo, EchoImpl()), compression=compression) as server:
            for wire in ("json", "protobuf"):
                relay = Relay(server.port)
                address = f"127.0.0.1:{relay.port}"
                with Client.connect(address, wire=wire, compression=compression) as client:
                    for name, payload in payloads.items():
                        client.call(Echo.Say, payload, timeout=60)  # connect, warm up
                        before = relay.bytes
                        times = []
                        for _ in range(calls):
                            start = time.perf_counter()
                            client.call(Echo.Say, payload, timeout=60)
                            times.append(time.perf_counter() - start)
                        per_call = (relay.bytes - before) // calls
                        median = statistics.median(times) * 1000
                        rows.append((name, wire, compression or "none", per_call, median))
                relay.close()
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024 * 1024, help="payload bytes (1 MiB)")
    parser.add_argument("--calls", type=int, default=20, help="calls per row")
    args = parser.parse_args()
    print("| payload | wire | compression | bytes on the wire per call | median ms per call |")
    print("|---|---|---|---:|---:|")
    for payload, wire, compression, nbytes, ms in sorted(measure(args.size, args.calls)):
        print(f"| {payload} | {wire} | {compression} | {nbytes:,} | {ms:.1f} |")


if __name__ == "__main__":
    main()
