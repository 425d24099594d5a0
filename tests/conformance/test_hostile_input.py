"""Hostile requests end INVALID_ARGUMENT, never crash or wedge a server, which keeps answering."""

from __future__ import annotations

import base64
import json
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

import grpc
import grpc.aio
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transport import (
    AsyncContext,
    Context,
    DecodeError,
    Int32,
    JsonCodec,
    Message,
    Service,
    bind,
    rpc,
)
from transport.cli.demo import Summary, Telemetry, TelemetryServer
from transport.encoding import frames as _attachments
from transport.encoding.frames import MAGIC
from transport.encoding.json_codec import MAX_JSON_DEPTH, NOT_UTF8
from transport.testing import AsyncTestServer, TestServer, serve


class Probe(Message):
    """A message with a field of every kind a hostile peer could aim at."""

    name: str = ""
    count: int = 0
    small: Int32 = 0
    ratio: float = 0.0
    extra: Any = None
    tags: list[str] = []
    child: Probe | None = None
    blob: bytes = b""  # with a bytes field, attachment frames are decoded too


class Probes(Service, Protocol, name="test.hostile.Probes"):
    @rpc
    def Echo(self, request: Probe) -> Probe: ...

    @rpc
    def Collect(self, requests: Iterator[Probe]) -> Probe: ...

    @rpc
    def Chat(self, requests: Iterator[Probe]) -> Iterator[Probe]: ...


class ProbesServer:
    def Echo(self, request: Probe, context: Context) -> Probe:
        return request

    def Collect(self, requests: Iterator[Probe], context: Context) -> Probe:
        return Probe(count=sum(1 for _ in requests))

    def Chat(self, requests: Iterator[Probe], context: Context) -> Iterator[Probe]:
        yield from requests


class AsyncProbesServer:
    async def Echo(self, request: Probe, context: AsyncContext) -> Probe:
        return request

    async def Collect(self, requests: AsyncIterator[Probe], context: AsyncContext) -> Probe:
        return Probe(count=len([r async for r in requests]))

    async def Chat(
        self, requests: AsyncIterator[Probe], context: AsyncContext
    ) -> AsyncIterator[Probe]:
        async for request in requests:
            yield request


DEEP = 100_000


def _frame(header: bytes) -> bytes:
    """An attachment frame (the binary alternative to JSON) around a JSON header."""
    frame = MAGIC + len(header).to_bytes(4, "little") + header
    return frame + bytes(-len(frame) % 16)


HOSTILE: dict[str, bytes] = {
    "deep arrays": b"[" * DEEP + b"]" * DEEP,
    "deep arrays, unterminated": b"[" * DEEP,
    "deep arrays in an Any field": b'{"extra":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "deep objects in an Any field": b'{"extra":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
    "deep nested messages": b'{"child":' * DEEP + b"{}" + b"}" * DEEP,
    "deep arrays in an unknown field": b'{"zzz":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "int32 above range": b'{"small": 2147483648}',
    "int32 below range": b'{"small": -2147483649}',
    "int32 as a float": b'{"small": 1.5}',
    "integer of 5000 digits": b'{"count": 1' + b"0" * 4999 + b"}",
    "float overflow": b'{"ratio": 1e999}',
    "NaN literal": b'{"ratio": NaN}',
    "Infinity literal": b'{"ratio": Infinity}',
    "-Infinity literal": b'{"ratio": -Infinity}',
    "NaN as a string for an int": b'{"count": "NaN"}',  # for a float it is NaN
    "invalid UTF-8 byte": b'{"name": "\xff"}',
    "truncated UTF-8 sequence": b'{"tags": ["ok", "ab\xc3"]}',
    "UTF-8 encoded surrogate": b'{"extra": "\xed\xa0\x80"}',
    "lone surrogate escape": b'{"name": "\\ud800"}',
    "truncated string": b'{"name": "ab',
    "truncated number": b'{"count": 1',
    "truncated object": b"{",
    "empty message": b"",
    "trailing garbage": b'{"count": 1} x',
    "byte order mark": b"\xef\xbb\xbf{}",
    "not an object": b'"probe"',
    "null": b"null",
    "wrong type": b'{"tags": "a"}',
    "random bytes": bytes(range(256)),
    "frame, truncated": MAGIC + b"\xff\xff\x00\x00{",
    "frame, invalid UTF-8": _frame(b'{"message": {"name": "\xff"}, "attachments": []}'),
    "frame, deep arrays": _frame(
        b'{"message": {"extra": ' + b"[" * DEEP + b"]" * DEEP + b'}, "attachments": []}'
    ),
    "frame, attachment past the end": _frame(
        b'{"message": {}, "attachments": [{"path": ["blob"], "offset": 0, "length": 99}]}'
    ),
}


def _raw(server: TestServer, method: str) -> Any:
    path = f"/test.hostile.Probes/{method}"
    channel = server.client.channel
    return {
        "Echo": channel.unary_unary,
        "Collect": channel.stream_unary,
        "Chat": channel.stream_stream,
    }[method](path)


def _status(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def _assert_still_serving(server: TestServer) -> None:
    assert server.client.call(Probes.Echo, Probe(name="next"), timeout=10).name == "next"


@pytest.fixture(scope="module")
def probes() -> Iterator[TestServer]:
    with serve(bind(Probes, ProbesServer())) as server:
        yield server


@pytest.mark.parametrize("payload", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_request_is_invalid_argument_and_the_server_answers_the_next_call(
    probes: TestServer, payload: bytes
) -> None:
    echo, collect, chat = (_raw(probes, m) for m in ("Echo", "Collect", "Chat"))
    valid = b'{"name": "ok"}'
    assert _status(lambda: echo(payload, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    # In the middle of a client stream and of a bidi stream too.
    stream = [valid, payload, valid]
    assert _status(lambda: collect(iter(stream), timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    assert _status(lambda: list(chat(iter(stream), timeout=10))) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    _assert_still_serving(probes)


def test_the_error_names_the_problem(probes: TestServer) -> None:
    # The project's words, and the field path; never a dependency's sentence.
    echo = _raw(probes, "Echo")
    expected = {
        "deep arrays in an Any field": "request does not decode: JSON is nested too deeply",
        "int32 above range": "at `$.small`",
        "NaN literal": "request does not decode: malformed JSON: ",
        "invalid UTF-8 byte": "request does not decode: malformed JSON: a string is not UTF-8 (",
        "truncated string": "request does not decode: malformed JSON: ",
        "frame, invalid UTF-8": "malformed attachment frame: a string is not UTF-8 (",
    }
    for name, text in expected.items():
        # A frame is read only from a client that announced frames.
        metadata = (_attachments.ANNOUNCEMENT,) if name.startswith("frame") else None
        with pytest.raises(grpc.RpcError) as failed:
            echo(HOSTILE[name], timeout=10, metadata=metadata)
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert text in (failed.value.details() or ""), name


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (b'{"name": "\xff"}', "invalid start byte at byte 10"),
        (b'{"tags": ["ok", "ab\xc3"]}', "invalid continuation byte at byte 19"),
        (b'{"extra": "\xed\xa0\x80"}', "invalid continuation byte at byte 11"),
        (b'{"name": "ab\xc3', "unexpected end of data at the end"),
    ],
)
def test_invalid_utf8_reads_the_same_on_every_msgspec(payload: bytes, where: str) -> None:
    # msgspec up to 0.22 raises UnicodeDecodeError, 0.23 a DecodeError of its own.
    with pytest.raises(DecodeError) as failed:
        JsonCodec(Probe).decode(payload)
    assert str(failed.value) == f"malformed JSON: {NOT_UTF8} ({where})"


def test_a_long_message_names_the_byte_past_the_first_chunk() -> None:
    payload = b'{"name": "' + b"a" * 200_000 + b'\xff"}'
    with pytest.raises(DecodeError, match=f"{NOT_UTF8} \\(invalid start byte at byte 200010\\)"):
        JsonCodec(Probe).decode(payload)


def test_duplicate_keys_the_last_one_wins(probes: TestServer) -> None:
    echo = _raw(probes, "Echo")
    answer = json.loads(echo(b'{"count": 1, "count": 2, "extra": {"a": 1, "a": 3}}', timeout=10))
    assert answer == {"count": 2, "extra": {"a": 3}}


def test_invalid_utf8_in_an_ignored_unknown_field_is_skipped_unread(probes: TestServer) -> None:
    assert _raw(probes, "Echo")(b'{"zzz": "\xff", "name": "x"}', timeout=10) == b'{"name":"x"}'


def test_plain_int_is_arbitrary_precision_and_int64_is_bounded() -> None:
    class Sizes(Message):
        any_size: int = 0
        bounded: Int32 = 0

    codec = JsonCodec(Sizes)
    assert codec.decode(b'{"anySize": 18446744073709551616}').any_size == 2**64
    with pytest.raises(DecodeError, match=r"- at `\$\.anySize`$"):
        codec.decode(b'{"anySize": 1' + b"0" * 5000 + b"}")


@pytest.mark.anyio
async def test_hostile_requests_on_the_asyncio_server(
    transport_serve_async: Callable[..., Any],
) -> None:
    server: AsyncTestServer = await transport_serve_async(bind(Probes, AsyncProbesServer()))
    channel: Any = server.client.channel
    echo = channel.unary_unary("/test.hostile.Probes/Echo")
    chat = channel.stream_stream("/test.hostile.Probes/Chat")
    for name in ("deep arrays", "deep nested messages", "invalid UTF-8 byte", "float overflow"):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await echo(HOSTILE[name], timeout=10)
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        call = chat(timeout=10)
        await call.write(b"{}")
        await call.write(HOSTILE[name])
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            async for _ in call:
                pass
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
    assert (await server.client.call(Probes.Echo, Probe(count=7))).count == 7


@pytest.fixture
def raised_recursion_limit() -> Iterator[None]:
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


@pytest.mark.usefixtures("raised_recursion_limit")
def test_depth_guard_holds_when_the_program_raised_the_recursion_limit(
    probes: TestServer,
) -> None:
    # Without the guard msgspec would recurse 100,000 levels and overflow the C
    # stack of the handler thread, killing the process.
    echo = _raw(probes, "Echo")
    for name in (
        "deep arrays in an Any field",
        "deep nested messages",
        "deep arrays",
        "frame, deep arrays",
    ):
        with pytest.raises(grpc.RpcError) as failed:
            echo(HOSTILE[name], timeout=10)
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "nested too deeply" in (failed.value.details() or "")
    _assert_still_serving(probes)


@pytest.mark.usefixtures("raised_recursion_limit")
def test_depth_guard_counts_only_structure() -> None:
    codec = JsonCodec(Probe)
    limit = MAX_JSON_DEPTH
    at_limit = b'{"extra":' + b"[" * (limit - 1) + b"]" * (limit - 1) + b"}"
    assert codec.decode(at_limit).extra is not None
    over = b'{"extra":' + b"[" * limit + b"]" * limit + b"}"
    # Brackets inside strings, escaped quotes and backslashes are not structure.
    in_string = b'{"name": "' + b'[\\"[\\\\' * DEEP + b'"}'
    assert codec.decode(in_string).name == '["[\\' * DEEP
    escaped_then_deep = b'{"extra": ["\\\\", ' + b"[" * DEEP + b"]" * DEEP + b"]}"
    results: list[str] = []

    def decode_all() -> None:  # on a thread, like a handler, with its smaller stack
        for payload in (over, escaped_then_deep):
            try:
                codec.decode(payload)
                results.append("decoded")
            except DecodeError as exc:
                results.append(str(exc))

    worker = threading.Thread(target=decode_all)
    worker.start()
    worker.join(timeout=30)
    assert results == ["JSON is nested too deeply"] * 2


# --- hypothesis: random bytes and random JSON at every method of the demo service

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
NUMERIC = ["float32", "<f8", ">i2", "uint8", "bool", "complex64", "float16", "int64"]
NOT_NUMERIC = ["object", "U4", "S3", "V8", "M8[s]", "i4,i4", "(2,)i4", "float128", "x"]


def _consistent_array(dtype: str, shape: list[int]) -> st.SearchStrategy[dict[str, Any]]:
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    data = st.binary(min_size=size, max_size=size).map(lambda b: base64.b64encode(b).decode())
    return st.fixed_dictionaries({"dtype": st.just(dtype), "shape": st.just(shape), "data": data})


# Arrays whose bytes match dtype x shape reach the handlers; the others test the decoder.
CONSISTENT_ARRAYS = st.tuples(
    st.sampled_from(NUMERIC), st.lists(st.integers(1, 3), max_size=3) | st.just([0])
).flatmap(lambda pair: _consistent_array(*pair))
ODD_ARRAYS = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(NUMERIC + NOT_NUMERIC),
        "shape": st.lists(st.integers(min_value=-3, max_value=2**40), max_size=4),
        "data": st.binary(max_size=48).map(lambda b: base64.b64encode(b).decode()),
    },
    optional={
        "quantization": st.sampled_from(["NONE", "FP16", "UINT8", "BOGUS"]),
        "scale": st.floats(allow_nan=False),
        "minVal": st.floats(allow_nan=False),
        "originalDtype": st.sampled_from(["float32", "float64", "object", "int8"]),
    },
)


def _reading(values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    fields = st.fixed_dictionaries({"sensor": st.text(max_size=4), "values": values})
    return fields.map(lambda v: json.dumps(v).encode())


SUMMARIES = st.fixed_dictionaries(
    {"sensor": st.text(max_size=4)}, optional={"count": st.integers(-5, 5) | JSON, "mean": JSON}
)


#: Random bytes, random JSON, and messages almost of the right shape.
def _framed(message: bytes) -> bytes:
    return _frame(b'{"message": ' + message + b', "attachments": []}')


GARBAGE = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: MAGIC + b),
    JSON.map(lambda v: json.dumps(v).encode()),
    JSON.map(lambda v: _frame(json.dumps(v).encode())),
    SUMMARIES.map(lambda v: json.dumps(v).encode()),
    _reading(ODD_ARRAYS | JSON),
    _reading(ODD_ARRAYS | JSON).map(_framed),
)
#: Readings the decoder accepts, of every numeric dtype: what the handlers compute on.
READINGS = _reading(CONSISTENT_ARRAYS) | _reading(CONSISTENT_ARRAYS).map(_framed)
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}


@pytest.fixture(scope="module")
def demo() -> Iterator[TestServer]:
    with serve(bind(Telemetry, TelemetryServer())) as server:
        yield server


def _drain(responses: Any) -> None:
    # Replay streams as many readings as asked for: a fuzzed count may be huge.
    for index, _ in enumerate(responses):
        if index == 20:
            responses.cancel()
            return


def _telemetry_call(server: TestServer, method: str, messages: list[bytes]) -> grpc.StatusCode:
    channel: Any = server.client.channel
    path = f"/demo.v1.Telemetry/{method}"
    if method == "Summarise":
        return _status(lambda: channel.unary_unary(path)(messages[0], timeout=10))
    if method == "Replay":
        return _status(lambda: _drain(channel.unary_stream(path)(messages[0], timeout=10)))
    if method == "Upload":
        return _status(lambda: channel.stream_unary(path)(iter(messages), timeout=10))
    return _status(lambda: _drain(channel.stream_stream(path)(iter(messages), timeout=10)))


def _check(server: TestServer, method: str, messages: list[bytes]) -> None:
    code = _telemetry_call(server, method, messages)
    assert code in ALLOWED, (method, messages, code)
    replay = server.client.call(Telemetry.Replay, Summary(sensor="s", count=2), timeout=10)
    assert len(list(replay)) == 2


FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.slow
@pytest.mark.parametrize("method", list(Telemetry.methods()))
@FUZZ
@given(messages=st.lists(GARBAGE, min_size=1, max_size=3))
def test_random_bytes_and_json_end_ok_or_invalid_argument(
    demo: TestServer, method: str, messages: list[bytes]
) -> None:
    _check(demo, method, messages)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["Summarise", "Upload", "Live"])
@FUZZ
@given(messages=st.lists(READINGS, min_size=1, max_size=3))
def test_well_formed_readings_end_ok_or_invalid_argument(
    demo: TestServer, method: str, messages: list[bytes]
) -> None:
    _check(demo, method, messages)
