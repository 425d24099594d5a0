"""The testing helpers and the pytest plugin's fixtures, as a user of the library meets them."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable

import pytest

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import AsyncClient, Client, DeclarationError, RpcError, StatusCode, bind
from transport.testing import AsyncTestServer, TestServer, serve, serve_async

pytest_plugins = ["pytester"]

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]


def test_serve_yields_a_running_server_and_a_connected_client() -> None:
    with serve(bind(Echo, EchoServer())) as server:
        assert server.address == f"127.0.0.1:{server.port}" and server.port > 0
        assert isinstance(server.client, Client)
        assert server.client.call(Echo.Say, Note(text="a")).text == "a"
        with server.connect(timeout=5.0) as other:
            assert other.call(Echo.Say, Note(text="b")).text == "b"
        address = server.address
    with Client.connect(address, timeout=2.0) as late, pytest.raises(RpcError) as caught:
        late.call(Echo.Say, Note())
    assert caught.value.code in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED)


def test_serve_mounts_several_bindings_and_passes_options() -> None:
    class Second(EchoServer):
        def Say(self, request: Note, context: object) -> Note:
            return Note(text="second")

    with (
        serve(bind(Echo, EchoServer())) as first,
        serve(bind(Echo, Second()), client_options={"timeout": 5.0}) as second,
    ):
        assert first.client.call(Echo.Say, Note(text="x")).text == "x"
        assert second.client.call(Echo.Say, Note(text="x")).text == "second"
        assert second.client.timeout == 5.0
        assert first.port != second.port


def test_serve_refuses_an_asyncio_implementation() -> None:
    with (
        pytest.raises(DeclarationError, match=r"grpc\.aio\.server"),
        serve(bind(Echo, AsyncEchoServer())),
    ):
        pass  # pragma: no cover - never reached


@pytest.mark.anyio
async def test_serve_async_yields_a_running_server_and_a_connected_client() -> None:
    async with serve_async(bind(Echo, AsyncEchoServer())) as server:
        assert isinstance(server.client, AsyncClient)
        assert (await server.client.call(Echo.Say, Note(text="a"))).text == "a"
        async with server.connect(timeout=5.0) as other:
            assert (await other.call(Echo.Say, Note(text="b"))).text == "b"
        assert server.address == f"127.0.0.1:{server.port}"


def test_the_sync_fixture(transport_serve: Serve) -> None:
    client = transport_serve(bind(Echo, EchoServer())).client
    assert client.call(Echo.Say, Note(text="three lines")).text == "three lines"


@pytest.mark.anyio
async def test_the_async_fixture(transport_serve_async: ServeAsync) -> None:
    client = (await transport_serve_async(bind(Echo, AsyncEchoServer()))).client
    assert (await client.call(Echo.Say, Note(text="three lines"))).text == "three lines"


USER_TESTS = """
    from collections.abc import AsyncIterator, Iterator
    from typing import Protocol

    import pytest
    from transport import Message, Service, bind, rpc


    class Hello(Message):
        name: str = ""


    class Greeter(Service, Protocol, name="user.Greeter"):
        @rpc
        def Greet(self, request: Hello) -> Hello: ...

        @rpc
        def Count(self, request: Hello) -> Iterator[Hello]: ...


    class Greeting:
        def Greet(self, request, context):
            return Hello(name=f"hello {request.name}")

        def Count(self, request, context):
            for i in range(3):
                yield Hello(name=str(i))


    class AsyncGreeting:
        async def Greet(self, request, context):
            return Hello(name=f"hi {request.name}")

        async def Count(self, request, context):
            yield Hello(name="0")


    def test_greet(transport_serve):
        client = transport_serve(bind(Greeter, Greeting())).client
        assert client.call(Greeter.Greet, Hello(name="ann")).name == "hello ann"


    def test_two_servers_in_one_test(transport_serve):
        first = transport_serve(bind(Greeter, Greeting()))
        second = transport_serve(bind(Greeter, Greeting()))
        assert first.port != second.port
        assert [h.name for h in second.client.call(Greeter.Count, Hello())] == ["0", "1", "2"]


    @pytest.mark.anyio
    async def test_greet_async(transport_serve_async):
        client = (await transport_serve_async(bind(Greeter, AsyncGreeting()))).client
        assert (await client.call(Greeter.Greet, Hello(name="bo"))).name == "hi bo"
"""


@pytest.mark.slow
def test_a_users_three_line_tests_run_with_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS))
    result = pytester.runpytest_subprocess(
        "-q", "-W", "error", "-p", "no:cacheprovider", "-p", "no:asyncio"
    )
    result.assert_outcomes(passed=3)
