"""What the retry of refused streams must not send again, on both clients.

A stream the server refuses (HTTP/2 REFUSED_STREAM) before its first response
never reached a handler, so the client starts it again. Two things it must
not do: start a server stream again once a response came (the caller would
see messages twice), and send a client stream again (its requests were read
from the caller's iterator once; they are gone).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import h2.connection
import pytest
from h2.errors import ErrorCodes

from transport import AsyncClient, Client, RpcError, StatusCode
from transport.client.calls import RefusalRetry

from ..echo_service import Echo, Note
from ..refusing_server import Refuser, refusing_server

SEVEN = b'{"text": "7"}'


@dataclass
class RefusesAfterAResponse(Refuser):
    """Sends one message on each stream, then, once the client read it, refuses the stream.

    A reset sent with the message could overtake it in the client; waiting for
    the test to say the message was read keeps the order the test needs.
    """

    read: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None

    def _serve(self, sock: socket.socket) -> None:
        self._sock = sock
        super()._serve(sock)

    def _answer(self, connection: h2.connection.H2Connection, stream_id: int) -> None:
        assert self._sock is not None
        head = [(":status", "200"), ("content-type", "application/grpc")]
        connection.send_headers(stream_id, head)
        connection.send_data(stream_id, b"\0" + len(self.message).to_bytes(4, "big") + self.message)
        self._sock.sendall(connection.data_to_send())
        assert self.read.wait(10), "the client did not read the first message"
        connection.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)


@pytest.fixture(autouse=True)
def _short_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # A client that wrongly retries gives up after half a second, not ten.
    monkeypatch.setattr(RefusalRetry, "WINDOW", 0.5)


def _notes(count: int) -> Iterator[Note]:
    yield from (Note(text=str(n)) for n in range(count))


async def _async_notes(count: int) -> AsyncIterator[Note]:
    for n in range(count):
        yield Note(text=str(n))


def test_a_server_stream_is_not_started_again_after_its_first_response() -> None:
    refuser = RefusesAfterAResponse(refuse=0, message=SEVEN)
    with refusing_server(refuser) as server:
        received: list[Note] = []
        with Client.connect(server.address, timeout=10) as client, pytest.raises(RpcError) as ended:
            for note in client.call(Echo.Repeat, Note()):
                received.append(note)
                refuser.read.set()
        assert received == [Note(text="7")]  # once: not [7, 7, 7, ...]
        assert ended.value.code is StatusCode.UNAVAILABLE
        assert server.streams == 1


@pytest.mark.anyio
async def test_an_asyncio_server_stream_is_not_started_again_after_its_first_response() -> None:
    refuser = RefusesAfterAResponse(refuse=0, message=SEVEN)
    with refusing_server(refuser) as server:
        received: list[Note] = []
        async with AsyncClient.connect(server.address, timeout=10) as client:
            with pytest.raises(RpcError) as ended:
                async for note in client.call(Echo.Repeat, Note()):
                    received.append(note)
                    refuser.read.set()
        assert received == [Note(text="7")]
        assert ended.value.code is StatusCode.UNAVAILABLE
        assert server.streams == 1


def test_a_refused_server_stream_is_served_once_with_no_duplicates() -> None:
    with refusing_server(Refuser(refuse=5, message=SEVEN)) as server:
        with Client.connect(server.address, timeout=10) as client:
            assert list(client.call(Echo.Repeat, Note())) == [Note(text="7")]
        assert server.streams == 6  # five refused, one served


def test_a_refused_client_stream_is_never_sent_again() -> None:
    with refusing_server(Refuser(refuse=10**6, message=SEVEN)) as server:
        with Client.connect(server.address, timeout=10) as client:
            with pytest.raises(RpcError) as collected:
                client.call(Echo.Collect, _notes(3))
            assert collected.value.code is StatusCode.UNAVAILABLE
            with pytest.raises(RpcError) as chatted:
                list(client.call(Echo.Chat, _notes(3)))
            assert chatted.value.code is StatusCode.UNAVAILABLE
        assert server.streams == 2  # one stream each call: neither was sent again


@pytest.mark.anyio
async def test_an_asyncio_refused_client_stream_is_never_sent_again() -> None:
    with refusing_server(Refuser(refuse=10**6, message=SEVEN)) as server:
        async with AsyncClient.connect(server.address, timeout=10) as client:
            with pytest.raises(RpcError) as collected:
                await client.call(Echo.Collect, _async_notes(3))
            assert collected.value.code is StatusCode.UNAVAILABLE
            with pytest.raises(RpcError) as chatted:
                async for _ in client.call(Echo.Chat, _async_notes(3)):
                    pass
            assert chatted.value.code is StatusCode.UNAVAILABLE
        assert server.streams == 2  # one stream each call: neither was sent again
