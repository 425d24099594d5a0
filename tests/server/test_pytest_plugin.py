"""The fixtures under anyio's plugin and under pytest-asyncio, as a user's suite runs them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import bind
from transport.testing import Serve, ServeAsync

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

USER_TESTS = """
    from typing import Protocol

    import pytest

    from transport import Message, Service, bind, rpc
    from transport.testing import ServeAsync


    class Hello(Message):
        name: str = ""


    class Greeter(Service, Protocol, name="user.Greeter"):
        @rpc
        def Greet(self, request: Hello) -> Hello: ...


    class AsyncGreeting:
        async def Greet(self, request: Hello) -> Hello:
            return Hello(name=f"hi {{request.name}}")


    {mark}
    async def test_async(transport_serve_async: ServeAsync) -> None:
        server = await transport_serve_async(bind(Greeter, AsyncGreeting()))
        assert (await server.client.call(Greeter.Greet, Hello(name="a"))).name == "hi a"
"""
ANYIO_BACKEND = """
    import pytest

    @pytest.fixture
    def anyio_backend() -> str:
        return "asyncio"
"""


def _run(pytester: pytest.Pytester, mark: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=textwrap.dedent(USER_TESTS.format(mark=mark)))
    pytester.makeconftest(textwrap.dedent(ANYIO_BACKEND))
    return pytester.runpytest_subprocess(
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        *args,
    )


@pytest.mark.slow
def test_under_anyio(pytester: pytest.Pytester) -> None:
    _run(pytester, "@pytest.mark.anyio", "-p", "no:asyncio").assert_outcomes(passed=1)


@pytest.mark.slow
def test_under_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "", "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_under_pytest_asyncio_strict_mode_says_what_to_add(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "@pytest.mark.asyncio", "-o", "asyncio_mode=strict")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_async requested transport_serve_async, an async fixture, but no async plugin*",
            "*mark the test @pytest.mark.anyio*",
            '*set asyncio_mode = "auto" in your pytest configuration*',
            "*async with transport.testing.serve_async(binding) as server*",
        ]
    )


# -- the fixtures' types, as a user's mypy sees them (mypy --strict runs over this file) ---------


def test_the_sync_fixture_is_typed(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    reply: Note = server.client.call(Echo.Say, Note(text="typed"))
    assert reply.text == "typed"


@pytest.mark.anyio
async def test_the_async_fixture_is_typed(transport_serve_async: ServeAsync) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    reply: Note = await server.client.call(Echo.Say, Note(text="typed"))
    assert reply.text == "typed"


# -- grpc core's log lines stay out of a user's test output --------------------------------------

CHATTY_TESTS = """
    import pytest

    from tests.echo_service import Echo, EchoServer, Note
    from transport import Client, bind
    from transport.testing import Serve

    LEFT_OPEN: list[Client] = []


    @pytest.mark.parametrize("n", range(5))
    def test_a_client_outlives_its_server(transport_serve: Serve, n: int) -> None:
        server = transport_serve(bind(Echo, EchoServer()))
        other = server.connect()
        LEFT_OPEN.append(other)  # the server stops under it: grpc core logs "Got goaway"
        assert other.call(Echo.Say, Note(text="a")).text == "a"
"""


@pytest.mark.slow
def test_the_fixtures_keep_grpc_core_lines_out_of_the_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)  # this session's default, inherited
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # tests.echo_service
    pytester.makepyfile(test_user=textwrap.dedent(CHATTY_TESTS))
    # -s: what grpc core writes reaches the output as it would between tests.
    result = pytester.runpytest_subprocess("-q", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    output = result.stdout.str() + result.stderr.str()
    assert "goaway" not in output.lower(), output
