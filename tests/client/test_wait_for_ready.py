"""``wait_for_ready``: a client started before its server waits for it instead of failing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest

from tests.echo_service import Echo, EchoServer, Note
from transport import AsyncClient, Client, RpcError, StatusCode, bind


class Later:
    """A port held (bound, not listening: connections are refused) for a server started later."""

    def __init__(self) -> None:
        # grpcio binds with SO_REUSEPORT on Linux, so it can share the placeholder's port.
        self._placeholder = socket.socket()
        self._placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._placeholder.bind(("127.0.0.1", 0))
        self.port: int = self._placeholder.getsockname()[1]
        self._executor = futures.ThreadPoolExecutor(max_workers=4)
        self._server: grpc.Server | None = None

    def start(self) -> None:
        """Start the echo server on the held port."""
        self._server = grpc.server(self._executor)
        bind(Echo, EchoServer()).add_to(self._server)
        assert self._server.add_insecure_port(f"127.0.0.1:{self.port}") == self.port
        self._server.start()

    def close(self) -> None:
        """Stop the server, release the port."""
        if self._server is not None:
            self._server.stop(grace=None).wait(timeout=10)
        self._placeholder.close()
        self._executor.shutdown(wait=False)


@contextmanager
def not_yet_started() -> Iterator[tuple[Later, int]]:
    """A server that does not listen until its ``start()``, and its port."""
    later = Later()
    try:
        yield later, later.port
    finally:
        later.close()


def _failed_to_connect(channel: grpc.Channel) -> threading.Event:
    """Set once the channel has tried to connect and found nothing listening."""
    failed = threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            failed.set()

    channel.subscribe(watch, try_to_connect=True)
    return failed


def test_without_wait_for_ready_a_call_fails_at_once() -> None:
    with (
        not_yet_started() as (_, port),
        Client.connect(f"127.0.0.1:{port}", timeout=10) as client,
        pytest.raises(RpcError) as caught,
    ):
        client.call(Echo.Say, Note(text="early"))
    assert caught.value.code is StatusCode.UNAVAILABLE


@pytest.mark.parametrize("per_call", [False, True])
def test_a_client_started_before_its_server_waits_for_it(per_call: bool) -> None:
    with (
        not_yet_started() as (server, port),
        Client.connect(f"127.0.0.1:{port}", timeout=30, wait_for_ready=not per_call) as client,
        futures.ThreadPoolExecutor(max_workers=1) as pool,
    ):
        failed = _failed_to_connect(client.channel)
        wait = True if per_call else None
        reply = pool.submit(lambda: client.call(Echo.Say, Note(text="early"), wait_for_ready=wait))
        assert failed.wait(timeout=10), "the client never tried to connect"
        assert not reply.done()  # waiting, not failed
        server.start()
        assert reply.result(timeout=30).text == "early"


@pytest.mark.anyio
async def test_an_async_client_started_before_its_server_waits_for_it() -> None:
    import anyio

    with not_yet_started() as (server, port):
        client = AsyncClient.connect(f"127.0.0.1:{port}", timeout=30, wait_for_ready=True)
        try:
            started = anyio.Event()
            replies: list[Note] = []

            async def call() -> None:
                started.set()
                replies.append(await client.call(Echo.Say, Note(text="early")))

            async with anyio.create_task_group() as group:
                group.start_soon(call)
                await started.wait()
                # Connecting finds nothing listening before the server starts.
                # One read of the state per step: a second read could see the failure
                # and then wait for the change after it (the reconnect, a backoff later).
                with anyio.fail_after(10):
                    state = client.channel.get_state(try_to_connect=True)
                    while state is not grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                        await client.channel.wait_for_state_change(state)
                        state = client.channel.get_state(try_to_connect=True)
                assert replies == []
                server.start()
            assert [reply.text for reply in replies] == ["early"]
        finally:
            await client.close()
