"""Message size limits: one default, set on either side; going over is RESOURCE_EXHAUSTED."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AsyncClient,
    Client,
    RpcError,
    StatusCode,
    bind,
    grpc_options,
)
from transport.testing import AsyncTestServer, TestServer

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]
LIMIT = 1024
BIG = Note(text="x" * 2 * LIMIT)


def _assert_over_the_limit(error: RpcError, direction: str) -> None:
    assert error.code is StatusCode.RESOURCE_EXHAUSTED
    assert f"{direction} message larger than max" in error.message
    assert f"vs. {LIMIT})" in error.message


def test_the_default_and_the_options() -> None:
    assert DEFAULT_MAX_MESSAGE_BYTES == 4 * 1024 * 1024
    assert grpc_options() == [
        ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
    ]
    assert grpc_options(
        max_send_message_bytes=-1, max_receive_message_bytes=10, extra=[("grpc.x", 1)]
    ) == [
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", 10),
        ("grpc.x", 1),
    ]


def test_the_server_refuses_a_request_over_its_receive_limit(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()), max_receive_message_bytes=LIMIT)
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, BIG)
    _assert_over_the_limit(caught.value, "Received")
    with pytest.raises(RpcError) as caught:
        list(server.client.call(Echo.Chat, iter([Note(text="small"), BIG])))
    _assert_over_the_limit(caught.value, "Received")
    assert server.client.call(Echo.Say, Note(text="small")).text == "small"


def test_the_server_refuses_to_send_a_response_over_its_send_limit(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()), max_send_message_bytes=LIMIT)
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, BIG)
    _assert_over_the_limit(caught.value, "Sent")
    replies = server.client.call(Echo.Repeat, Note(text="y" * 2 * LIMIT, count=2))
    with pytest.raises(RpcError) as caught:
        list(replies)
    _assert_over_the_limit(caught.value, "Sent")


def test_the_client_limits_what_it_sends_and_receives(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    with Client.connect(server.address, max_send_message_bytes=LIMIT) as client:
        with pytest.raises(RpcError) as caught:
            client.call(Echo.Say, BIG)
        _assert_over_the_limit(caught.value, "Sent")
        with pytest.raises(RpcError) as caught:
            client.call(Echo.Collect, iter([Note(), BIG]))
        _assert_over_the_limit(caught.value, "Sent")
    with Client.connect(server.address, max_receive_message_bytes=LIMIT) as client:
        with pytest.raises(RpcError) as caught:
            client.call(Echo.Say, BIG)
        _assert_over_the_limit(caught.value, "Received")
        assert client.call(Echo.Say, Note(text="small")).text == "small"


@pytest.mark.slow
def test_the_default_limit_is_four_mebibytes(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    fits = Note(text="x" * (DEFAULT_MAX_MESSAGE_BYTES - 64))
    assert server.client.call(Echo.Say, fits) == fits
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note(text="x" * DEFAULT_MAX_MESSAGE_BYTES))
    assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert f"vs. {DEFAULT_MAX_MESSAGE_BYTES})" in caught.value.message
    # -1 lifts the limit on both sides.
    unlimited = transport_serve(
        bind(Echo, EchoServer()),
        max_receive_message_bytes=-1,
        max_send_message_bytes=-1,
        client_options={"max_send_message_bytes": -1, "max_receive_message_bytes": -1},
    )
    huge = Note(text="x" * (DEFAULT_MAX_MESSAGE_BYTES + 1024))
    assert unlimited.client.call(Echo.Say, huge) == huge


@pytest.mark.anyio
async def test_limits_on_the_asyncio_server_and_client(transport_serve_async: ServeAsync) -> None:
    server = await transport_serve_async(
        bind(Echo, AsyncEchoServer()), max_receive_message_bytes=LIMIT
    )
    with pytest.raises(RpcError) as caught:
        await server.client.call(Echo.Say, BIG)
    _assert_over_the_limit(caught.value, "Received")

    sending = await transport_serve_async(
        bind(Echo, AsyncEchoServer()), max_send_message_bytes=LIMIT
    )
    replies = sending.client.call(Echo.Repeat, Note(text="y" * 2 * LIMIT, count=1))
    with pytest.raises(RpcError) as caught:
        await replies.read()
    _assert_over_the_limit(caught.value, "Sent")

    async with AsyncClient.connect(sending.address, max_send_message_bytes=LIMIT) as client:
        with pytest.raises(RpcError) as caught:
            await client.call(Echo.Collect, [Note(), BIG])
        _assert_over_the_limit(caught.value, "Sent")
    plain = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    async with AsyncClient.connect(plain.address, max_receive_message_bytes=LIMIT) as client:
        with pytest.raises(RpcError) as caught:
            await client.call(Echo.Say, BIG)
        _assert_over_the_limit(caught.value, "Received")
        chat = client.open(Echo.Chat)
        await chat.write(BIG)
        with pytest.raises(RpcError) as caught:
            await chat.read()
        _assert_over_the_limit(caught.value, "Received")
    assert (await server.client.call(Echo.Say, Note(text="small"))).text == "small"
