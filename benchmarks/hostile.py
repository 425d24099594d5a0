"""Hostile requests at the 4 MiB limit against an owner daemon: loop stall and memory.

``python -m benchmarks.hostile`` starts an owner daemon with a 1 s lease for
each case (the ``none`` backend; ``--bad-handle`` to stop at the handle check,
after decoding), sends the case's request a few times, and prints per case: the
CPU time and traced peak memory (tracemalloc, over the request's size) of
decoding it in this process; the daemon's worst event-loop lag meanwhile (a
task that sleeps 1 ms and measures how late it wakes: scheduler delays on a
busy machine count too); its peak RSS growth over the request's size (grpc-core
buffers and memory the allocator keeps count too); whether it lost the lease.
``tests/test_hostile_daemon.py`` sends the same requests and asserts that the
lease is kept and Health answers.

Then the batch frame at the limit (a million empty messages declared in 4 MiB),
sent to the daemon's server-streaming ``Generate`` and read by a ``Client``
from a server that sends it: bytes in against CPU, loop lag and peak memory
(``--batches-only`` for that table alone). The protobuf wire's cases follow in
a table of their own (``--protobuf`` for them alone: :mod:`benchmarks.hostile_protobuf`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from benchmarks import hostile_protobuf
from transport import DEFAULT_MAX_MESSAGE_BYTES, Client, RpcError
from transport.encoding import batches as _batches
from transport.encoding.frames import ANNOUNCEMENT, MAGIC
from transport.errors import DecodeError
from transport.runtime import OpenSessionRequest
from transport.runtime.fence import OWNER_METADATA_KEY
from transport.runtime.wire import GenerateRequest, Runtime

#: Room left under the limit for the envelope grpc adds.
SIZE = DEFAULT_MAX_MESSAGE_BYTES - 1024

Payload = tuple[str, bytes, bool]  # method, request bytes, whether to announce frames


def _fill(prefix: bytes, item: bytes, suffix: bytes, size: int, sep: bytes = b",") -> bytes:
    count = max(0, (size - len(prefix) - len(suffix)) // (len(item) + len(sep)))
    return prefix + sep.join([item] * count) + suffix


def _many_arrays(handle: bytes, size: int) -> bytes:
    items, total, n = [], 0, 0
    while total < size - 100:
        item = b'"%x":{"dtype":"bool","shape":[0],"data":""}' % n
        items.append(item)
        total += len(item) + 1
        n += 1
    return b'{"handle":' + handle + b',"inputs":{' + b",".join(items[:-1]) + b"}}"


def _quantized(handle: str, size: int, **fields: object) -> bytes:
    data = base64.b64encode(bytes((size - 400) * 3 // 4)).decode()
    array = {"data": data, "originalDtype": "float64", **fields}
    return json.dumps({"handle": handle, "inputs": {"x": array}}).encode()


def _overlapping_frame(handle: str, size: int) -> bytes:
    length = max(16, (size - 16384) // 16 * 16)
    names = [f"x{i}" for i in range(48)]
    header = json.dumps(
        {
            "message": {
                "handle": handle,
                "inputs": {n: {"dtype": "uint8", "shape": [length], "data": None} for n in names},
            },
            "attachments": [
                {"path": ["inputs", n, "data"], "offset": 0, "length": length} for n in names
            ],
        }
    ).encode()
    frame = MAGIC + len(header).to_bytes(4, "little") + header
    return frame + bytes(-len(frame) % 16) + bytes(length)


def payloads(handle: str, size: int = SIZE) -> dict[str, Payload]:
    """The hostile requests, each at most ``size`` bytes, for a session ``handle``."""
    h = json.dumps(handle).encode()
    count = (size - 400) * 3 // 4
    return {
        "many dims": (
            "Infer",
            _fill(
                b'{"handle":' + h + b',"inputs":{"x":{"dtype":"float64","shape":[',
                b"4294967295",
                b'],"data":""}}}',
                size,
            ),
            False,
        ),
        "many tiny arrays": ("Infer", _many_arrays(h, size), False),
        "uint8 to float64": (
            "Infer",
            _quantized(
                handle,
                size,
                dtype="uint8",
                quantization="UINT8",
                scale=1.0,
                minVal=0.0,
                shape=[count],
            ),
            False,
        ),
        "fp16 to float64": (
            "Infer",
            _quantized(handle, size, dtype="float16", quantization="FP16", shape=[count // 2]),
            False,
        ),
        "fp16 to float128": (
            "Infer",
            _quantized(
                handle,
                size,
                dtype="float16",
                quantization="FP16",
                shape=[count // 2],
                originalDtype="float128",
            ),
            False,
        ),
        "overlapping frame": ("Infer", _overlapping_frame(handle, size), True),
        "config of empty lists": (
            "OpenSession",
            _fill(b'{"type":"none","config":{"x":[', b"[]", b"]}}", size),
            False,
        ),
        "config of empty objects": (
            "OpenSession",
            _fill(b'{"type":"none","config":{"x":[', b"{}", b"]}}", size),
            False,
        ),
        "config of zeros": (
            "OpenSession",
            _fill(b'{"type":"none","config":{"x":[', b"0", b"]}}", size),
            False,
        ),
        "deep config": (
            "OpenSession",
            b'{"type":"none","config":{"x":' + b"[" * (size - 40) + b"}}",
            False,
        ),
        "escaped handle": ("Infer", _fill(b'{"handle":"', b"\\u00e9", b'"}', size, b""), False),
        "unknown field": (
            "Infer",
            _fill(b'{"handle":' + h + b',"junk":[', b"0", b"]}", size),
            False,
        ),
    }


OWNER = "owner-a"


async def _serve(lease: str) -> None:
    """A leased daemon (1 s lease) that reports its worst event-loop lag on request."""
    import asyncio
    import sys

    from transport.runtime.backend_none import NoneBackend
    from transport.runtime.daemon import running

    loop = asyncio.get_running_loop()
    worst, lost = 0.0, False

    async def monitor() -> None:
        nonlocal worst
        while True:
            started = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - started - 0.001)

    def heard(holding: bool) -> None:
        nonlocal lost
        lost = lost or not holding

    async with running(
        NoneBackend(), instance_id=OWNER, lease=lease, lease_ttl=1.0, backend="none"
    ) as serving:
        watching = loop.create_task(monitor())
        print(f"listening on {serving.endpoint}", flush=True)
        while not serving.server.holds_lease:
            await asyncio.sleep(0.01)
        serving.server.subscribe(heard)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "lag":
                print(f"{worst} {lost}", flush=True)
                worst = 0.0
        watching.cancel()


class Daemon:
    """``python -m benchmarks.hostile --serve LEASE`` in a child process."""

    def __init__(self, lease: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.hostile", "--serve", lease],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.endpoint = self.process.stdout.readline().strip().removeprefix("listening on ")
        self.lag()  # waits for the lease, resets the worst lag

    def lag(self) -> tuple[float, bool]:
        """The worst loop lag since the last call, and whether the lease was ever lost."""
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.write("lag\n")
        self.process.stdin.flush()
        worst, lost = self.process.stdout.readline().split()
        return float(worst), lost == "True"

    def close(self) -> None:
        """Stop the daemon."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def open_handle(endpoint: str, owner: str = OWNER) -> str:
    """A session handle on the daemon ``owner`` at ``endpoint``."""
    with Client.connect(endpoint, timeout=10, metadata=[(OWNER_METADATA_KEY, owner)]) as client:
        return client.call(Runtime.OpenSession, OpenSessionRequest(type="echo")).handle


def send(channel: grpc.Channel, payload: Payload, owner: str = OWNER) -> grpc.StatusCode:
    """Send one raw request; its status code."""
    method, data, announce = payload
    metadata = [(OWNER_METADATA_KEY, owner), *([ANNOUNCEMENT] if announce else [])]
    call: Callable[..., bytes] = channel.unary_unary(f"/transport.v1.Runtime/{method}")
    try:
        call(data, metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0


def decoding(payload: Payload) -> tuple[float, float]:
    """In this process: the CPU seconds of decoding ``payload``, and its traced peak / size."""
    method, data, announce = payload
    request = getattr(Runtime, method).request_codec
    decode = request.decode_framed if announce else request.decode
    started = time.thread_time()
    with contextlib.suppress(DecodeError):
        decode(data)
    spent = time.thread_time() - started
    tracemalloc.start()  # a second time: tracing slows allocation down
    with contextlib.suppress(DecodeError):
        decode(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return spent, peak / len(data)


def measure(case: str, repeat: int, handle_valid: bool) -> str:
    """One row: statuses, decode CPU and memory, worst loop lag, peak RSS growth, lease."""
    with tempfile.TemporaryDirectory() as folder:
        daemon = Daemon(str(Path(folder) / "lease"))
        try:
            handle = open_handle(daemon.endpoint) if handle_valid else "no-such-handle"
            payload = payloads(handle)[case] if case != "baseline" else ("Health", b"{}", False)
            with grpc.insecure_channel(daemon.endpoint) as channel:
                send(channel, payload)  # warm the path
                Path(f"/proc/{daemon.process.pid}/clear_refs").write_text("5")  # resets VmHWM
                base = _status(daemon.process.pid, "VmRSS:")
                daemon.lag()
                codes = {send(channel, payload).name for _ in range(repeat)}
                worst, lost = daemon.lag()
                growth = (_status(daemon.process.pid, "VmHWM:") - base) / len(payload[1])
        finally:
            daemon.close()
    held = "lost" if lost else "kept"
    spent, traced = decoding(payload) if case != "baseline" else (0.0, 0.0)
    return (
        f"| {case} | {','.join(sorted(codes))} | {spent * 1000:.0f} ms | {traced:.1f}x "
        f"| {worst * 1000:.0f} ms | {growth:.1f}x | {held} |"
    )


# -- batch frames (issue 22) ------------------------------------------------------------


def batch_frame(size: int = SIZE) -> bytes:
    """A well-formed batch frame of ``size`` bytes or less declaring only empty messages."""
    count = (size - 8) // 4
    return _batches.MAGIC + struct.pack("<I", count) + bytes(4 * count)


def send_stream(
    channel: grpc.Channel, method: str, data: bytes, owner: str = OWNER
) -> grpc.StatusCode:
    """Send one raw request to a server-streaming method, read what it answers; its status."""
    call: grpc.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        f"/transport.v1.Runtime/{method}"
    )
    try:
        for _ in call(data, metadata=((OWNER_METADATA_KEY, owner),), timeout=30):
            pass
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def _cpu(pid: int) -> float:
    """The CPU seconds (user and system) process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hostile_server(frame: bytes) -> tuple[grpc.Server, str]:
    """A plain grpcio server that announces batches and answers any stream with ``frame``."""
    from concurrent import futures

    def answer(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        context.send_initial_metadata((_batches.announcement(_batches.CEILING),))
        yield frame

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_stream_rpc_method_handler(answer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("transport.v1.Runtime", {"Generate": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


def measure_batch_frames(repeat: int) -> list[str]:
    """Rows for the batch frame at the limit: sent to a daemon's Generate, read by a client."""
    frame = batch_frame()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        daemon = Daemon(str(Path(folder) / "lease"))
        try:
            with grpc.insecure_channel(daemon.endpoint) as channel:
                send_stream(channel, "Generate", frame)  # warm the path
                pid = daemon.process.pid
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM
                base, cpu = _status(pid, "VmRSS:"), _cpu(pid)
                daemon.lag()
                codes = {send_stream(channel, "Generate", frame).name for _ in range(repeat)}
                worst, lost = daemon.lag()
                spent = (_cpu(pid) - cpu) / repeat
                growth = _status(pid, "VmHWM:") - base
        finally:
            daemon.close()
    rows.append(
        f"| daemon's Generate | {','.join(sorted(codes))} | {len(frame)} | {spent * 1000:.0f} ms "
        f"| {worst * 1000:.0f} ms | {growth / 2**20:.1f} MiB | {'lost' if lost else 'kept'} |"
    )
    server, address = _hostile_server(frame)
    try:
        with Client.connect(address, timeout=30) as client:
            request = GenerateRequest(handle="x", prompt="", max_tokens=1)
            status = "OK"
            tracemalloc.start()
            started = time.process_time()
            try:
                list(client.call(Runtime.Generate, request))
            except RpcError as exc:
                status = exc.code.name
            spent = time.process_time() - started
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    finally:
        server.stop(None)
    rows.append(
        f"| Client reading it | {status} | {len(frame)} | {spent * 1000:.0f} ms (process) "
        f"| - | {peak / 2**20:.1f} MiB (traced) | - |"
    )
    return rows


def print_batch_frames(repeat: int) -> None:
    """Print the batch-frame table: bytes in against CPU, loop lag and peak memory."""
    print()
    print(
        "| batch frame at the limit, to | status | bytes in | CPU per request | worst loop lag "
        "| peak memory growth | lease |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in measure_batch_frames(repeat):
        print(row, flush=True)


def main() -> None:
    """Measure each case against a fresh daemon; print one row per case."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--bad-handle", action="store_true", help="decode only: NOT_FOUND after")
    parser.add_argument("--serve", metavar="LEASE", help=argparse.SUPPRESS)
    parser.add_argument("--batches-only", action="store_true", help="only the batch-frame cases")
    parser.add_argument("--protobuf", action="store_true", help="the protobuf cases only")
    args = parser.parse_args()
    if args.serve:
        import asyncio

        asyncio.run(_serve(args.serve))
        return
    if args.batches_only:
        print_batch_frames(args.repeat)
        return
    if args.protobuf:
        hostile_protobuf.print_table(args.repeat)
        return
    print(
        "| case | status | decode CPU | decode peak / size | worst loop lag "
        "| daemon peak RSS growth / size | lease |"
    )
    print("|---|---|---|---|---|---|---|")
    for case in ["baseline", *payloads("x", 1000)]:
        print(measure(case, args.repeat, not args.bad_handle), flush=True)
    print_batch_frames(args.repeat)
    print()
    hostile_protobuf.print_table(args.repeat)


if __name__ == "__main__":
    main()
