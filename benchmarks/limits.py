"""The limits of a Python process on loopback: raw blocking sockets and asyncio TCP.

No gRPC, no HTTP/2, no codec: a 4-byte length before each message. ``e`` +
payload asks for the payload back (unary latency); ``s`` + a count asks for
that many ticks (stream throughput), each written with its own send, as a
stream of separate messages would be. Every RPC variant pays at least this.
"""

from __future__ import annotations

import asyncio
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from transport import JsonCodec

from .driver import Driver
from .shapes import Reading, reading

_LENGTH = struct.Struct("<I")


def _tick_payload() -> bytes:
    from .servers import floor_tick

    return floor_tick()


# -- blocking sockets ---------------------------------------------------------------


def _read_exactly(stream: Any, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ConnectionError("the peer closed the connection")
    return bytes(data)


class _SocketHandler(socketserver.StreamRequestHandler):
    """One connection: answer requests until the client leaves."""

    tick = b""

    def handle(self) -> None:
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send = self.connection.sendall
        while True:
            head = self.rfile.read(4)
            if len(head) < 4:
                return
            body = _read_exactly(self.rfile, _LENGTH.unpack(head)[0])
            if body[:1] == b"e":
                send(head + body)
            else:
                frame = _LENGTH.pack(len(self.tick)) + self.tick
                for _ in range(int(body[1:])):
                    send(frame)


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve_socket() -> None:
    """Serve on blocking sockets, a thread per connection, until stdin closes."""
    _SocketHandler.tick = _tick_payload()
    with _ThreadingServer(("127.0.0.1", 0), _SocketHandler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(server.server_address[1], flush=True)
        sys.stdin.buffer.read()
        server.shutdown()


# -- asyncio TCP --------------------------------------------------------------------


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    tick = _tick_payload()
    frame = _LENGTH.pack(len(tick)) + tick
    try:
        while True:
            head = await reader.readexactly(4)
            body = await reader.readexactly(_LENGTH.unpack(head)[0])
            if body[:1] == b"e":
                writer.write(head + body)
            else:
                for _ in range(int(body[1:])):
                    writer.write(frame)
                    await writer.drain()
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # the client left, or the server stops
    finally:
        writer.close()


async def _serve_asyncio_tcp() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    server.close()


def serve_asyncio_tcp() -> None:
    """Serve with asyncio streams until stdin closes."""
    asyncio.run(_serve_asyncio_tcp())


SERVERS: dict[str, Callable[[], None]] = {
    "socket": serve_socket,
    "asyncio-tcp": serve_asyncio_tcp,
}


# -- the clients --------------------------------------------------------------------


class SocketDriver(Driver):
    """A blocking socket: the fewest steps a Python round trip can take."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")
        payload = b"e" + JsonCodec(Reading).encode(reading())
        self.echo = _LENGTH.pack(len(payload)) + payload

    def unary(self, calls: int) -> list[float]:
        send, rfile, echo, latencies = self.sock.sendall, self.rfile, self.echo, []
        for _ in range(calls):
            start = time.perf_counter()
            send(echo)
            _read_exactly(rfile, _LENGTH.unpack(_read_exactly(rfile, 4))[0])
            latencies.append(time.perf_counter() - start)
        return latencies

    def stream(self, count: int) -> float:
        request = f"s{count}".encode()
        rfile, unpack = self.rfile, _LENGTH.unpack
        start = time.perf_counter()
        self.sock.sendall(_LENGTH.pack(len(request)) + request)
        for _ in range(count):
            _read_exactly(rfile, unpack(_read_exactly(rfile, 4))[0])
        return time.perf_counter() - start

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


class AsyncioTcpDriver(Driver):
    """asyncio streams on the benchmark's event loop."""

    def __init__(self, variant: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(variant, port, loop)
        self.reader, self.writer = loop.run_until_complete(
            asyncio.open_connection("127.0.0.1", port)
        )
        payload = b"e" + JsonCodec(Reading).encode(reading())
        self.echo = _LENGTH.pack(len(payload)) + payload

    async def _read(self) -> bytes:
        head = await self.reader.readexactly(4)
        return await self.reader.readexactly(_LENGTH.unpack(head)[0])

    def unary(self, calls: int) -> list[float]:
        async def run() -> list[float]:
            latencies = []
            for _ in range(calls):
                start = time.perf_counter()
                self.writer.write(self.echo)
                await self._read()
                latencies.append(time.perf_counter() - start)
            return latencies

        return self.loop.run_until_complete(run())

    def stream(self, count: int) -> float:
        request = f"s{count}".encode()

        async def run() -> float:
            start = time.perf_counter()
            self.writer.write(_LENGTH.pack(len(request)) + request)
            for _ in range(count):
                await self._read()
            return time.perf_counter() - start

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.writer.close()
