"""A raw HTTP/2 gRPC server that refuses the first streams it is sent (REFUSED_STREAM).

grpc-core refuses a stream only in a race (a client at the stream bound while
the server has not freed a finished stream yet); this server does it on
purpose, so that a client's handling of refused streams can be tested exactly.
Streams after the refused ones get ``answer``: a JSON message with status OK,
or another status in trailers only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from h2.errors import ErrorCodes


@dataclass
class Refuser:
    """What the server does, and what it saw."""

    refuse: int  # refuse this many streams first (over all connections)
    message: bytes = b"{}"  # the JSON response of every stream after those
    status: int = 0  # grpc-status of those streams; non-zero: trailers only
    address: str = ""
    streams: int = 0  # streams opened by clients so far
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _next_is_refused(self) -> bool:
        with self.lock:
            self.streams += 1
            return self.streams <= self.refuse

    def _serve(self, sock: socket.socket) -> None:
        connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        connection.initiate_connection()
        sock.sendall(connection.data_to_send())
        refused: set[int] = set()
        with sock:
            while data := sock.recv(65536):
                for event in connection.receive_data(data):
                    stream_id = getattr(event, "stream_id", 0)
                    if isinstance(event, h2.events.RequestReceived) and self._next_is_refused():
                        connection.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
                        refused.add(stream_id)
                    elif isinstance(event, h2.events.DataReceived):
                        # For a refused stream (read in the same batch), the connection's window.
                        connection.acknowledge_received_data(
                            event.flow_controlled_length, stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded) and stream_id not in refused:
                        self._answer(connection, stream_id)
                sock.sendall(connection.data_to_send())

    def _answer(self, connection: h2.connection.H2Connection, stream_id: int) -> None:
        head = [(":status", "200"), ("content-type", "application/grpc")]
        if self.status:
            trailers = [("grpc-status", str(self.status)), ("grpc-message", "refusing%20server")]
            connection.send_headers(stream_id, head + trailers, end_stream=True)
            return
        connection.send_headers(stream_id, head)
        connection.send_data(stream_id, b"\0" + len(self.message).to_bytes(4, "big") + self.message)
        connection.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)


@contextmanager
def refusing_server(refuser: Refuser) -> Iterator[Refuser]:
    """Serve ``refuser`` on 127.0.0.1 (an ephemeral port) until the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    refuser.address = f"127.0.0.1:{listener.getsockname()[1]}"
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_quietly, args=(refuser, sock), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield refuser
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        listener.close()
        acceptor.join(5)


def _quietly(refuser: Refuser, sock: socket.socket) -> None:
    with contextlib.suppress(OSError, h2.exceptions.ProtocolError):  # the client went away
        refuser._serve(sock)
