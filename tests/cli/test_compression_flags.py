"""``run --compression gzip`` and ``serve --compression gzip`` compress what goes on the wire.

A gRPC client decompresses whatever it gets, so a call through one cannot
tell whether the server compressed. These tests read the raw HTTP/2 response:
the ``grpc-encoding`` header and the compressed flag of the message's frame.
"""

from __future__ import annotations

import gzip
import socket

import h2.config
import h2.connection
import h2.events
import msgspec
import pytest

from transport.runtime.process import DaemonProcess

from .test_run import Run

# A response this repetitive is smaller compressed; grpc-core sends a message
# uncompressed when compressing does not make it smaller.
LONG = "compressible " * 200


class RawResponse(msgspec.Struct):
    """One unary response as it came over HTTP/2."""

    headers: dict[str, str]
    compressed: bool
    message: bytes
    trailers: dict[str, str]


def raw_call(address: str, path: str, request: bytes) -> RawResponse:
    """One unary call over a plain HTTP/2 connection, the message frame left as sent."""
    host, port = address.rsplit(":", 1)
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    connection.initiate_connection()
    stream = connection.get_next_available_stream_id()
    connection.send_headers(
        stream,
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", address),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-accept-encoding", "identity,gzip"),
        ],
    )
    connection.send_data(stream, b"\0" + len(request).to_bytes(4, "big") + request, end_stream=True)
    headers: dict[str, str] = {}
    trailers: dict[str, str] = {}
    body = b""
    ended = False
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(connection.data_to_send())
        while not ended and (data := sock.recv(65536)):
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)  # type: ignore[arg-type]
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data or b""
                    connection.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)  # type: ignore[arg-type]
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            sock.sendall(connection.data_to_send())
    assert len(body) >= 5 and len(body) == 5 + int.from_bytes(body[1:5], "big"), body
    compressed = body[0] == 1
    message = gzip.decompress(body[5:]) if compressed else body[5:]
    return RawResponse(headers, compressed, message, trailers)


@pytest.mark.parametrize(("app", "kind"), [("binding", "sync"), ("async_bindings", "async")])
def test_run_with_gzip_compresses_its_responses_on_the_wire(app: str, kind: str) -> None:
    with Run(f"tests.run_app:{app}", "--port", "0", "--compression", "gzip") as run:
        response = raw_call(run.address, "/kv.v1.KV/Get", msgspec.json.encode({"key": LONG}))
        assert run.stop()[0] == 0
    assert response.trailers["grpc-status"] == "0"
    assert response.headers["grpc-encoding"] == "gzip"
    assert response.compressed
    assert msgspec.json.decode(response.message)["value"] == f"{kind}:{LONG}"


def test_serve_with_gzip_compresses_its_responses_on_the_wire() -> None:
    options = ("--instance-id", "", "--compression", "gzip")
    with DaemonProcess(*options) as daemon:
        request = msgspec.json.encode({"type": "echo", "path": LONG})
        response = raw_call(daemon.endpoint, "/transport.v1.Runtime/Describe", request)
    assert response.trailers["grpc-status"] == "0", response.trailers
    assert response.headers["grpc-encoding"] == "gzip"
    assert response.compressed
    assert msgspec.json.decode(response.message)["path"] == LONG
