"""Errors end to end: statuses with details, unexpected exceptions, UNIMPLEMENTED, bad input."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import anyio
import grpc
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.echo_service import FAIL_DETAILS, SECRET, AsyncEchoServer, Echo, EchoServer, Note
from transport import AsyncClient, Context, RpcError, Service, StatusCode, bind, rpc
from transport.testing import AsyncTestServer, TestServer

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]
KINDS = ["unary_unary", "unary_stream", "stream_unary", "stream_stream"]
PATHS = {
    "unary_unary": "/transport.tests.Echo/Say",
    "unary_stream": "/transport.tests.Echo/Repeat",
    "stream_unary": "/transport.tests.Echo/Collect",
    "stream_stream": "/transport.tests.Echo/Chat",
}


def _call_sync(client: Any, kind: str, note: Note) -> Any:
    """Call ``kind`` with ``note`` as the (only or second) request; return what came back."""
    if kind == "unary_unary":
        return client.call(Echo.Say, note)
    if kind == "unary_stream":
        return list(client.call(Echo.Repeat, Note(text=note.text, count=1)))
    if kind == "stream_unary":
        return client.call(Echo.Collect, iter([Note(text="ok"), note]))
    return list(client.call(Echo.Chat, iter([Note(text="ok"), note])))


async def _call_async(client: Any, kind: str, note: Note) -> Any:
    if kind == "unary_unary":
        return await client.call(Echo.Say, note)
    if kind == "unary_stream":
        return [n async for n in client.call(Echo.Repeat, Note(text=note.text, count=1))]
    if kind == "stream_unary":
        return await client.call(Echo.Collect, [Note(text="ok"), note])
    return [n async for n in client.call(Echo.Chat, [Note(text="ok"), note])]


def _raw_sync(channel: grpc.Channel, kind: str, payload: bytes) -> grpc.StatusCode:
    """Send ``payload`` with no serializers (after a good message on client streams)."""
    factory: Any = getattr(channel, kind)
    multicallable = factory(PATHS[kind])
    argument: Any = payload if kind.startswith("unary") else iter([b"{}", payload])
    try:
        result = multicallable(argument, timeout=5)
        if kind.endswith("stream"):
            list(result)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# -- statuses with details ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_status_message_and_details_round_trip_sync(transport_serve: Serve, kind: str) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    with pytest.raises(RpcError) as caught:
        _call_sync(server.client, kind, Note(text="fail"))
    error = caught.value
    assert error.code is StatusCode.FAILED_PRECONDITION
    assert error.message == "asked to fail"
    assert error.details == FAIL_DETAILS
    assert str(error) == f"FAILED_PRECONDITION: asked to fail (details: {FAIL_DETAILS!r})"
    # The details entry is consumed; the handler's own trailing metadata stays.
    assert all(not key.startswith("transport-") for key, _ in error.trailing_metadata)
    assert _call_sync(server.client, kind, Note(text="fine"))


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_status_message_and_details_round_trip_async(
    transport_serve_async: ServeAsync, kind: str
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    with pytest.raises(RpcError) as caught:
        await _call_async(server.client, kind, Note(text="fail"))
    error = caught.value
    assert (error.code, error.message, error.details) == (
        StatusCode.FAILED_PRECONDITION,
        "asked to fail",
        FAIL_DETAILS,
    )
    assert await _call_async(server.client, kind, Note(text="fine"))


def test_handler_trailing_metadata_travels_with_the_error(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note(text="fail"), metadata=[("x-echo", "kept")])
    assert ("x-trailing", "kept") in caught.value.trailing_metadata


class Refuser:
    """Fails with metadata carried on the error itself."""

    def Say(self, request: Note, context: Context) -> Note:
        raise RpcError(
            StatusCode.ABORTED, "stale", {"owner": "b"}, trailing_metadata=[("x-owner", "b")]
        )


class AsyncRefuser:
    async def Say(self, request: Note, context: Any) -> Note:
        raise RpcError(StatusCode.ABORTED, "stale", trailing_metadata=[("x-owner-bin", b"\x00b")])


def test_an_errors_own_trailing_metadata_reaches_the_client(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, Refuser()))
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note(text="x"))
    assert caught.value.code is StatusCode.ABORTED
    assert caught.value.details == {"owner": "b"}
    assert ("x-owner", "b") in caught.value.trailing_metadata


@pytest.mark.anyio
async def test_an_errors_own_trailing_metadata_reaches_the_async_client(
    transport_serve_async: ServeAsync,
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncRefuser()))
    with pytest.raises(RpcError) as caught:
        await server.client.call(Echo.Say, Note(text="x"))
    assert ("x-owner-bin", b"\x00b") in caught.value.trailing_metadata


def test_a_stream_fails_after_the_responses_already_sent(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    replies = server.client.call(Echo.Chat, iter([Note(text="a"), Note(text="fail")]))
    assert next(replies) == Note(text="a")
    with pytest.raises(RpcError) as caught:
        next(replies)
    assert caught.value.code is StatusCode.FAILED_PRECONDITION


def test_context_abort_and_errors_without_details(transport_serve: Serve) -> None:
    class Aborting(EchoServer):
        def Say(self, request: Note, context: Context) -> Note:
            if request.text == "abort":
                context.abort(StatusCode.NOT_FOUND, "no such note", {"text": request.text})
            raise RpcError(StatusCode.PERMISSION_DENIED, "")

    server = transport_serve(bind(Echo, Aborting()))
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note(text="abort"))
    assert (caught.value.code, caught.value.message, caught.value.details) == (
        StatusCode.NOT_FOUND,
        "no such note",
        {"text": "abort"},
    )
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note(text="bare"))
    assert (caught.value.code, caught.value.message, caught.value.details) == (
        StatusCode.PERMISSION_DENIED,
        "",
        None,
    )
    assert str(caught.value) == "PERMISSION_DENIED"


def test_details_that_are_not_json_are_dropped_and_logged(
    transport_serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    class Unserialisable(EchoServer):
        def Say(self, request: Note, context: Context) -> Note:
            raise RpcError(StatusCode.ABORTED, "conflict", {"when": object()})

    server = transport_serve(bind(Echo, Unserialisable()))
    with caplog.at_level(logging.ERROR, logger="transport"), pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note())
    assert (caught.value.code, caught.value.message, caught.value.details) == (
        StatusCode.ABORTED,
        "conflict",
        None,
    )
    assert "not JSON-serialisable" in caplog.text


# -- unexpected exceptions ---------------------------------------------------------------


def _assert_unknown_without_traceback(error: RpcError) -> None:
    assert error.code is StatusCode.UNKNOWN
    assert error.message == "unexpected error in handler"
    assert SECRET not in str(error) and "Traceback" not in str(error)
    assert error.details is None


def _assert_logged(caplog: pytest.LogCaptureFixture, path: str) -> None:
    records = [r for r in caplog.records if r.name == "transport" and r.levelno == logging.ERROR]
    assert records, "the unexpected error was not logged"
    assert path in records[-1].getMessage()
    assert records[-1].exc_info is not None
    assert SECRET in str(records[-1].exc_info[1])


@pytest.mark.parametrize("kind", KINDS)
def test_unexpected_exception_is_unknown_and_logged_sync(
    transport_serve: Serve, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    with caplog.at_level(logging.ERROR, logger="transport"), pytest.raises(RpcError) as caught:
        _call_sync(server.client, kind, Note(text="crash"))
    _assert_unknown_without_traceback(caught.value)
    _assert_logged(caplog, PATHS[kind])
    assert _call_sync(server.client, kind, Note(text="fine"))


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_unexpected_exception_is_unknown_and_logged_async(
    transport_serve_async: ServeAsync, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    with caplog.at_level(logging.ERROR, logger="transport"), pytest.raises(RpcError) as caught:
        await _call_async(server.client, kind, Note(text="crash"))
    _assert_unknown_without_traceback(caught.value)
    _assert_logged(caplog, PATHS[kind])
    assert await _call_async(server.client, kind, Note(text="fine"))


def test_a_response_of_the_wrong_type_is_internal(
    transport_serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    class Wrong(EchoServer):
        def Say(self, request: Note, context: Context) -> Note:
            return "not a note"  # type: ignore[return-value]

    server = transport_serve(bind(Echo, Wrong()))
    with caplog.at_level(logging.ERROR, logger="transport"), pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note())
    assert caught.value.code is StatusCode.INTERNAL
    assert "returned str, expected Note" in caplog.text


# -- UNIMPLEMENTED -----------------------------------------------------------------------


class Partial(EchoServer):
    """Implements only Say: the other declared methods answer UNIMPLEMENTED."""

    Repeat = Collect = Chat = None  # type: ignore[assignment]


class AsyncPartial(AsyncEchoServer):
    Repeat = Collect = Chat = None  # type: ignore[assignment]


class Elsewhere(Service, Protocol, name="transport.tests.Elsewhere"):
    @rpc
    def Find(self, request: Note) -> Note: ...


@pytest.mark.parametrize("kind", KINDS[1:])
def test_declared_but_not_implemented_sync(transport_serve: Serve, kind: str) -> None:
    server = transport_serve(bind(Echo, Partial()))
    with pytest.raises(RpcError) as caught:
        _call_sync(server.client, kind, Note())
    assert caught.value.code is StatusCode.UNIMPLEMENTED
    assert "is not implemented" in caught.value.message
    assert server.client.call(Echo.Say, Note(text="here")).text == "here"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS[1:])
async def test_declared_but_not_implemented_async(
    transport_serve_async: ServeAsync, kind: str
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncPartial()))
    with pytest.raises(RpcError) as caught:
        await _call_async(server.client, kind, Note())
    assert caught.value.code is StatusCode.UNIMPLEMENTED


def test_unknown_methods_and_services_are_unimplemented(transport_serve: Serve) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    with pytest.raises(RpcError) as caught:
        server.client.call(Elsewhere.Find, Note())
    assert caught.value.code is StatusCode.UNIMPLEMENTED
    raw: Any = server.client.channel.unary_unary("/transport.tests.Echo/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as raw_error:
        raw(b"{}", timeout=5)
    assert raw_error.value.code() is grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.anyio
async def test_unknown_method_is_unimplemented_async(transport_serve_async: ServeAsync) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    with pytest.raises(RpcError) as caught:
        await server.client.call(Elsewhere.Find, Note())
    assert caught.value.code is StatusCode.UNIMPLEMENTED


# -- bad input ---------------------------------------------------------------------------

BAD_REQUESTS = [
    (b'{"text": 5}', "Expected `str`, got `int` - at `$.text`"),
    (b'{"count": "many"}', "Expected `int`, got `str` - at `$.count`"),
    (b'{"text": "a", "count": 1.5}', "Expected `int`, got `float` - at `$.count`"),
    (b"[1, 2]", "Expected `object`, got `array`"),
    (b"not json", "malformed JSON"),
    (b'{"text": "unterminated', "malformed JSON"),
    (b"", "malformed JSON"),
    (b"\xff\xfe\x00", "malformed JSON"),
]


def _raw_error(channel: grpc.Channel, kind: str, payload: bytes) -> grpc.RpcError:
    factory: Any = getattr(channel, kind)
    argument: Any = payload if kind.startswith("unary") else iter([b"{}", payload])
    with pytest.raises(grpc.RpcError) as caught:
        result = factory(PATHS[kind])(argument, timeout=5)
        if kind.endswith("stream"):
            list(result)
    return caught.value


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("payload", "message"), BAD_REQUESTS)
def test_bad_requests_are_invalid_argument_with_the_path_sync(
    transport_serve: Serve, kind: str, payload: bytes, message: str
) -> None:
    server = transport_serve(bind(Echo, EchoServer()))
    error: Any = _raw_error(server.client.channel, kind, payload)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("request does not decode: ")
    assert message in error.details()
    assert _call_sync(server.client, kind, Note(text="fine"))


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_bad_requests_are_invalid_argument_with_the_path_async(
    transport_serve_async: ServeAsync, kind: str
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))

    def send_all() -> list[tuple[grpc.StatusCode, str | None, str]]:
        with grpc.insecure_channel(server.address) as channel:
            return [
                (error.code(), error.details(), message)
                for payload, message in BAD_REQUESTS
                for error in [_raw_error(channel, kind, payload)]
            ]

    for code, details, message in await anyio.to_thread.run_sync(send_all):
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert details is not None and message in details
    assert await _call_async(server.client, kind, Note(text="fine"))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children)
        | st.dictionaries(st.sampled_from(["text", "count", "x"]) | st.text(), children)
    ),
    max_leaves=8,
)


def _fuzz(address: str) -> None:
    """Send generated garbage to every method; each must end OK or INVALID_ARGUMENT."""
    with grpc.insecure_channel(address) as channel:

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        )
        @given(
            kind=st.sampled_from(KINDS),
            payload=st.binary(max_size=64) | _JSON.map(msgspec.json.encode),
        )
        def check(kind: str, payload: bytes) -> None:
            assert _raw_sync(channel, kind, payload) in (
                grpc.StatusCode.OK,
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            assert _raw_sync(channel, kind, b'{"text": "good"}') is grpc.StatusCode.OK

        check()


def test_a_huge_repeat_count_is_refused_not_streamed_until_the_deadline(
    transport_serve: Serve,
) -> None:
    # Found by the fuzz below: {"count": 10**30} decodes (a plain int takes any
    # integer) and Repeat streamed until the call's deadline.
    address = transport_serve(bind(Echo, EchoServer())).address
    with grpc.insecure_channel(address) as channel:
        huge = b'{"count": 1' + b"0" * 30 + b"}"
        assert _raw_sync(channel, "unary_stream", huge) is grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.slow
def test_generated_garbage_never_breaks_the_sync_server(transport_serve: Serve) -> None:
    _fuzz(transport_serve(bind(Echo, EchoServer())).address)


@pytest.mark.slow
@pytest.mark.anyio
async def test_generated_garbage_never_breaks_the_async_server(
    transport_serve_async: ServeAsync,
) -> None:
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    await anyio.to_thread.run_sync(_fuzz, server.address)


# -- a client's requests that fail -------------------------------------------------------


class BrokenSourceError(Exception):
    """Raised by a test's own request iterator."""


def _failing_requests() -> Iterator[Note]:
    yield Note(text="a")
    raise BrokenSourceError("the source of requests broke")


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
def test_a_failing_request_iterator_raises_its_own_error_sync(
    transport_serve: Serve, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    # grpcio logs the iterator's exception itself; the call raises it, not UNKNOWN.
    server = transport_serve(bind(Echo, EchoServer()))
    with caplog.at_level(logging.CRITICAL, logger="grpc"), pytest.raises(BrokenSourceError):
        if kind == "stream_unary":
            server.client.call(Echo.Collect, _failing_requests())
        else:
            list(server.client.call(Echo.Chat, _failing_requests()))
    with (
        caplog.at_level(logging.CRITICAL, logger="grpc"),
        pytest.raises(TypeError, match="takes Note"),
    ):
        server.client.call(Echo.Collect, [Note(), "not a note"])  # type: ignore[misc]
    assert server.client.call(Echo.Collect, [Note(text="ok")]).text == "ok"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_a_failing_request_iterator_raises_its_own_error_async(
    transport_serve_async: ServeAsync, kind: str
) -> None:
    # grpc.aio would end these calls with a bare CancelledError.
    server = await transport_serve_async(bind(Echo, AsyncEchoServer()))
    with pytest.raises(BrokenSourceError):
        if kind == "stream_unary":
            await server.client.call(Echo.Collect, _failing_requests())
        else:
            [note async for note in server.client.call(Echo.Chat, _failing_requests())]
    with pytest.raises(TypeError, match="takes Note"):
        await server.client.with_call(Echo.Collect, [Note(), "not a note"])  # type: ignore[misc]
    assert (await server.client.call(Echo.Collect, [Note(text="ok")])).text == "ok"


# -- responses that do not decode (client side) ------------------------------------------


def _liar_handler() -> grpc.GenericRpcHandler:
    """A plain grpcio service at Echo's paths that answers with mistyped JSON."""

    def say(data: bytes, context: Any) -> bytes:
        return b'{"text": 1}'

    def repeat(data: bytes, context: Any) -> Iterator[bytes]:
        yield b'{"text": "fine"}'
        yield b'{"count": "lots"}'

    return grpc.method_handlers_generic_handler(
        "transport.tests.Echo",
        {
            "Say": grpc.unary_unary_rpc_method_handler(say),
            "Repeat": grpc.unary_stream_rpc_method_handler(repeat),
        },
    )


def test_a_response_that_does_not_decode_is_invalid_argument(transport_serve: Serve) -> None:
    server = transport_serve()
    server.server.add_generic_rpc_handlers((_liar_handler(),))
    with pytest.raises(RpcError) as caught:
        server.client.call(Echo.Say, Note())
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert caught.value.message == (
        "response does not decode: Expected `str`, got `int` - at `$.text`"
    )
    replies = server.client.call(Echo.Repeat, Note())
    assert next(replies) == Note(text="fine")
    with pytest.raises(RpcError, match=r"at `\$\.count`") as caught:
        next(replies)
    assert caught.value.code is StatusCode.INVALID_ARGUMENT


@pytest.mark.anyio
async def test_a_response_that_does_not_decode_is_invalid_argument_async(
    transport_serve: Serve,
) -> None:
    server = transport_serve()
    server.server.add_generic_rpc_handlers((_liar_handler(),))
    async with AsyncClient.connect(server.address, timeout=5.0) as client:
        with pytest.raises(RpcError, match=r"at `\$\.text`") as caught:
            await client.call(Echo.Say, Note())
        assert caught.value.code is StatusCode.INVALID_ARGUMENT
        replies = client.call(Echo.Repeat, Note())
        assert await replies.read() == Note(text="fine")
        with pytest.raises(RpcError, match=r"at `\$\.count`"):
            await replies.read()
