"""gzip per server, per client and per call, measured on the bytes that cross a relay."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Annotated, Any, Protocol

import grpc
import pytest

from transport import Client, bind, rpc
from transport.encoding.json_codec import Message
from transport.encoding.protobuf import Number
from transport.service import Service
from transport.testing import serve

MIB = 1024 * 1024


class Text(Message):
    """A text to echo."""

    text: Annotated[str, Number(1)] = ""


class Echo(Service, Protocol, name="compression.Echo"):
    """Echoes a text."""

    @rpc
    def Say(self, request: Text) -> Text: ...


class EchoImpl:
    def Say(self, request: Text) -> Text:
        return request


class Relay:
    """A TCP relay that counts the bytes each way (one connection at a time is enough here)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sent = 0  # client to server
        self.received = 0  # server to client
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            self._start(self._pump, downstream, upstream, True)
            self._start(self._pump, upstream, downstream, False)

    def _pump(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        try:
            while data := source.recv(65536):
                if outbound:
                    self.sent += len(data)
                else:
                    self.received += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()


@contextmanager
def relayed(compression: str | None = None) -> Iterator[Relay]:
    with serve(bind(Echo, EchoImpl()), compression=compression) as server:
        relay = Relay(server.port)
        try:
            yield relay
        finally:
            relay.close()


TEXT = Text(text="the quick brown fox " * (MIB // 20))


@pytest.mark.parametrize("wire", ["json", "protobuf"])
def test_a_gzip_client_sends_less_and_the_server_understands(wire: str) -> None:
    with (
        relayed() as relay,
        Client.connect(f"127.0.0.1:{relay.port}", wire=wire, compression="gzip") as client,
    ):
        assert client.call(Echo.Say, TEXT, timeout=30) == TEXT
    assert relay.sent < MIB // 10, relay.sent
    assert relay.received > MIB, relay.received


@pytest.mark.parametrize("wire", ["json", "protobuf"])
def test_a_gzip_server_sends_less_and_the_client_understands(wire: str) -> None:
    with (
        relayed(compression="gzip") as relay,
        Client.connect(f"127.0.0.1:{relay.port}", wire=wire) as client,
    ):
        assert client.call(Echo.Say, TEXT, timeout=30) == TEXT
    assert relay.received < MIB // 10, relay.received
    assert relay.sent > MIB, relay.sent


def test_one_call_can_ask_for_gzip() -> None:
    with relayed() as relay, Client.connect(f"127.0.0.1:{relay.port}") as client:
        assert client.call(Echo.Say, TEXT, timeout=30, compression="gzip") == TEXT
        assert relay.sent < MIB // 10, relay.sent
        assert client.call(Echo.Say, Text(text="x"), timeout=30) == Text(text="x")


def test_a_plain_grpcio_peer_sending_gzip_is_understood() -> None:
    with relayed() as relay, grpc.insecure_channel(f"127.0.0.1:{relay.port}") as channel:
        say: Any = channel.unary_unary("/compression.Echo/Say")
        answer = say(b'{"text":"' + b"a" * MIB + b'"}', compression=grpc.Compression.Gzip)
    assert answer == b'{"text":"' + b"a" * MIB + b'"}'
    assert relay.sent < MIB // 10, relay.sent


def test_an_unknown_compression_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="compression must be one of"):
        Client.connect("127.0.0.1:1", compression="brotli")
