"""Protobuf amplification at the 4 MiB limit: bytes in against a server's CPU and peak RSS.

``python -m benchmarks.hostile`` prints these rows after its own (``--protobuf``
for these alone). A server in a child process (the Jina seed and a packed echo,
on the protobuf wire) takes each request a few times; per case: the status,
the bytes on the wire (gzip-compressed where the case says), the server's CPU
per request, and its peak RSS growth (VmHWM) over the bytes on the wire.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

import grpc

from transport import Context, Message, Number, Service, bind, rpc
from transport.encoding.protobuf import ProtobufCodec
from transport.examples.jina import JinaRPC, JinaServer

MIB = 1 << 20
SIZE = 4 * MIB - 1024


class Varints(Message):
    """A packed run of varints."""

    values: Annotated[list[int], Number(1)] = []


class PackedEcho(Service, Protocol, name="bench.hostile.PackedEcho"):
    """Echoes its packed run."""

    @rpc
    def Echo(self, request: Varints) -> Varints: ...


class _Echo:
    def Echo(self, request: Varints, context: Context) -> Varints:
        return request


def _empty_docs(count: int) -> bytes:
    """A Jina ``RequestProto`` of ``count`` empty documents: ``index { docs {} ... }``."""
    docs = b"\x0a\x00" * count
    size, length = len(docs), bytearray()
    while size > 0x7F:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    return b"\x1a" + bytes([*length, size]) + docs


# name: (method path, request bytes, gzip on the wire)
Case = tuple[str, bytes, bool]


def cases() -> dict[str, Case]:
    """The protobuf requests, each at most :data:`SIZE` bytes before compression."""
    jina = "/JinaRPC/Call"
    echo = ProtobufCodec(Varints).encode(Varints(values=[1000] * (SIZE // 2 - 8)))
    return {
        "pb: 2,096,640 empty DocumentProto": (jina, _empty_docs((SIZE - 8) // 2), False),
        "pb: the same, gzip": (jina, _empty_docs((SIZE - 8) // 2), True),
        "pb: 524,288 empty DocumentProto (1 MiB)": (jina, _empty_docs(524_288), False),
        "pb: packed varint echo": ("/bench.hostile.PackedEcho/Echo", echo, False),
    }


def _serve() -> None:
    from transport.testing import serve

    with serve(bind(JinaRPC, JinaServer()), bind(PackedEcho, _Echo()), wire="protobuf") as server:
        print(server.port, flush=True)
        sys.stdin.read()  # until the parent closes it


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hwm(pid: int, key: str = "VmHWM:") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def _send(channel: grpc.Channel, case: Case) -> str:
    path, data, compressed = case
    compression = grpc.Compression.Gzip if compressed else None
    try:
        if path == "/JinaRPC/Call":
            call: Callable[..., Any] = channel.stream_stream(path)
            list(call(iter([data]), timeout=60, compression=compression))
        else:
            unary: Callable[..., Any] = channel.unary_unary(path)
            unary(data, timeout=60, compression=compression)
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


def measure(name: str, case: Case, repeat: int) -> str:
    """One row: status, bytes on the wire, server CPU per request, peak RSS growth / bytes."""
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.hostile_protobuf", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert server.stdout is not None and server.stdin is not None
    try:
        port = int(server.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _send(channel, (case[0], b"", False))  # warm the path, not the heap
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # resets VmHWM
            base, cpu = _hwm(server.pid, "VmRSS:"), _cpu(server.pid)
            codes = {_send(channel, case) for _ in range(repeat)}
            spent = (_cpu(server.pid) - cpu) / repeat
            growth = _hwm(server.pid) - base
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    _, data, compressed = case
    wire = len(gzip.compress(data)) if compressed else len(data)
    return (
        f"| {name} | {','.join(sorted(codes))} | {wire:,} | {spent * 1000:.0f} ms "
        f"| {growth / MIB:.0f} MiB | {growth / wire:.1f}x |"
    )


def print_table(repeat: int = 3) -> None:
    """Measure each protobuf case against a fresh server; print one row per case."""
    print("| case | status | bytes on the wire | server CPU | peak RSS growth | growth / bytes |")
    print("|---|---|---|---|---|---|")
    for name, case in cases().items():
        print(measure(name, case, repeat), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve()
    else:
        print_table()
