"""The interop client's test cases, as ``doc/interop-test-descriptions.md`` words them.

Each case is a coroutine taking an :class:`~transport.AsyncClient` connected to
a ``grpc.testing.TestService`` server, of any implementation that speaks JSON;
it returns when the server behaved as the description asks and raises
:class:`CaseError` saying what differed otherwise. :func:`run_cases` runs
some of them, each under a time bound, and reports one line per case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..client.aio import AsyncClient
from ..errors import RpcError
from ..metadata import Metadata
from ..status import StatusCode
from .messages import (
    EchoStatus,
    Empty,
    Payload,
    ResponseParameters,
    SimpleRequest,
    StreamingInputCallRequest,
    StreamingOutputCallRequest,
    StreamingOutputCallResponse,
)
from .server import ECHO_INITIAL, ECHO_TRAILING
from .service import TestService, UnimplementedService

__all__ = ["CASES", "CaseError", "CaseResult", "run_cases"]

#: What ``special_status_message`` sends: whitespace and characters beyond the BMP.
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"

_LARGE_REQUEST = 271828
_LARGE_RESPONSE = 314159
_STREAM_REQUESTS = (27182, 8, 1828, 45904)
_STREAM_RESPONSES = (31415, 9, 2653, 58979)


class CaseError(Exception):
    """Raised when the server did not behave as a case expects."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CaseError(message)


def _body_size(response: StreamingOutputCallResponse | None) -> int | None:
    if response is None:
        return None
    return len(response.payload.body) if response.payload is not None else 0


def _stream_request(size: int, body: int = 0) -> StreamingOutputCallRequest:
    return StreamingOutputCallRequest(
        response_parameters=[ResponseParameters(size=size)],
        payload=Payload(body=bytes(body)) if body else None,
    )


def _expect_status(exc: RpcError, code: StatusCode, message: str | None = None) -> None:
    _expect(exc.code is code, f"status {exc.code.name}, expected {code.name}")
    if message is not None:
        _expect(exc.message == message, f"status message {exc.message!r}, expected {message!r}")


async def empty_unary(client: AsyncClient) -> None:
    """EmptyCall answers the empty message."""
    _expect(await client.call(TestService.EmptyCall, Empty()) == Empty(), "response is not {}")


async def large_unary(client: AsyncClient) -> None:
    """UnaryCall carries 271828 bytes up and 314159 bytes down."""
    request = SimpleRequest(
        response_size=_LARGE_RESPONSE, payload=Payload(body=bytes(_LARGE_REQUEST))
    )
    response = await client.call(TestService.UnaryCall, request)
    body = response.payload.body if response.payload is not None else b""
    _expect(body == bytes(_LARGE_RESPONSE), f"payload of {len(body)} bytes, not 314159 zeros")


async def client_streaming(client: AsyncClient) -> None:
    """StreamingInputCall adds up four payloads to 74922 bytes."""
    requests = [StreamingInputCallRequest(payload=Payload(body=bytes(n))) for n in _STREAM_REQUESTS]
    response = await client.call(TestService.StreamingInputCall, requests)
    size = response.aggregated_payload_size
    _expect(size == 74922, f"aggregatedPayloadSize {size}, expected 74922")


async def server_streaming(client: AsyncClient) -> None:
    """StreamingOutputCall streams four payloads of the sizes asked for, in order."""
    request = StreamingOutputCallRequest(
        response_parameters=[ResponseParameters(size=n) for n in _STREAM_RESPONSES]
    )
    sizes = [_body_size(r) async for r in client.call(TestService.StreamingOutputCall, request)]
    _expect(sizes == list(_STREAM_RESPONSES), f"payload sizes {sizes}")


async def ping_pong(client: AsyncClient) -> None:
    """FullDuplexCall answers each of four requests before the next is sent."""
    async with client.open(TestService.FullDuplexCall) as stream:
        for size, body in zip(_STREAM_RESPONSES, _STREAM_REQUESTS, strict=True):
            await stream.write(_stream_request(size, body))
            got = _body_size(await stream.read())
            _expect(got == size, f"response of {got} bytes, expected {size}")
        await stream.done_writing()
        _expect(await stream.read() is None, "a response after the last one")


async def empty_stream(client: AsyncClient) -> None:
    """FullDuplexCall with no requests ends OK with no responses."""
    async with client.open(TestService.FullDuplexCall) as stream:
        await stream.done_writing()
        _expect(await stream.read() is None, "a response to no request")


async def cancel_after_begin(client: AsyncClient) -> None:
    """StreamingInputCall cancelled once started, before any request: the call ends cancelled.

    An awaited asyncio call reports its cancellation as ``CancelledError``.
    """
    started = asyncio.Event()

    async def no_requests() -> AsyncIterator[StreamingInputCallRequest]:
        started.set()
        await asyncio.Event().wait()  # never sends anything
        yield StreamingInputCallRequest()  # pragma: no cover - never reached

    call = asyncio.ensure_future(client.call(TestService.StreamingInputCall, no_requests()))
    await asyncio.wait_for(started.wait(), timeout=10)
    call.cancel()
    try:
        await call
    except asyncio.CancelledError:
        if not call.cancelled():  # this task, not the call, is being cancelled
            raise
        return
    raise CaseError("the call completed although it was cancelled")


async def cancel_after_first_response(client: AsyncClient) -> None:
    """FullDuplexCall cancelled after its first response: the call ends CANCELLED."""
    stream = client.open(TestService.FullDuplexCall)
    await stream.write(_stream_request(_STREAM_RESPONSES[0], _STREAM_REQUESTS[0]))
    got = _body_size(await stream.read())
    _expect(got == _STREAM_RESPONSES[0], f"first response of {got} bytes")
    stream.cancel()
    try:
        await stream.read()
    except RpcError as exc:
        _expect_status(exc, StatusCode.CANCELLED)
        return
    raise CaseError("read after cancel did not fail")


async def timeout_on_sleeping_server(client: AsyncClient) -> None:
    """FullDuplexCall with a 1 ms deadline and no half-close ends DEADLINE_EXCEEDED."""
    stream = client.open(TestService.FullDuplexCall, timeout=0.001)
    try:
        await stream.write(StreamingOutputCallRequest(payload=Payload(body=bytes(27182))))
        await stream.read()
    except RpcError as exc:
        _expect_status(exc, StatusCode.DEADLINE_EXCEEDED)
        return
    raise CaseError("the call did not time out")


async def custom_metadata(client: AsyncClient) -> None:
    """Metadata is echoed in initial and trailing metadata, on a unary and a bidi call."""
    initial_value, trailing_value = "test_initial_metadata_value", b"\xab\xab\xab"
    metadata: Metadata = [(ECHO_INITIAL, initial_value), (ECHO_TRAILING, trailing_value)]

    def check(initial: Metadata, trailing: Metadata, where: str) -> None:
        got_initial = dict(initial).get(ECHO_INITIAL)
        got_trailing = dict(trailing).get(ECHO_TRAILING)
        _expect(got_initial == initial_value, f"{where}: initial metadata {got_initial!r}")
        _expect(got_trailing == trailing_value, f"{where}: trailing metadata {got_trailing!r}")

    request = SimpleRequest(
        response_size=_LARGE_RESPONSE, payload=Payload(body=bytes(_LARGE_REQUEST))
    )
    _, info = await client.with_call(TestService.UnaryCall, request, metadata=metadata)
    check(info.initial_metadata, info.trailing_metadata, "UnaryCall")

    async with client.open(TestService.FullDuplexCall, metadata=metadata) as stream:
        await stream.write(_stream_request(_LARGE_RESPONSE, _LARGE_REQUEST))
        await stream.done_writing()
        sizes = [_body_size(r) async for r in stream]
        _expect(sizes == [_LARGE_RESPONSE], f"FullDuplexCall: payload sizes {sizes}")
        check(await stream.initial_metadata(), await stream.trailing_metadata(), "FullDuplexCall")


async def _expect_echoed_status(client: AsyncClient, message: str, *, bidi: bool) -> None:
    status = EchoStatus(code=StatusCode.UNKNOWN.value, message=message)
    try:
        if bidi:
            async with client.open(TestService.FullDuplexCall) as stream:
                await stream.write(StreamingOutputCallRequest(response_status=status))
                await stream.done_writing()
                await stream.read()
        else:
            await client.call(TestService.UnaryCall, SimpleRequest(response_status=status))
    except RpcError as exc:
        _expect_status(exc, StatusCode.UNKNOWN, message)
        return
    raise CaseError("the call succeeded although it asked for UNKNOWN")


async def status_code_and_message(client: AsyncClient) -> None:
    """The status a request asks for comes back, code and message, unary and bidi."""
    await _expect_echoed_status(client, "test status message", bidi=False)
    await _expect_echoed_status(client, "test status message", bidi=True)


async def special_status_message(client: AsyncClient) -> None:
    """A status message with whitespace and non-BMP characters comes back unchanged."""
    await _expect_echoed_status(client, SPECIAL_MESSAGE, bidi=False)


async def _expect_unimplemented(call: Awaitable[Empty]) -> None:
    try:
        await call
    except RpcError as exc:
        _expect_status(exc, StatusCode.UNIMPLEMENTED)
        return
    raise CaseError("the call succeeded")


async def unimplemented_method(client: AsyncClient) -> None:
    """TestService/UnimplementedCall answers UNIMPLEMENTED."""
    await _expect_unimplemented(client.call(TestService.UnimplementedCall, Empty()))


async def unimplemented_service(client: AsyncClient) -> None:
    """A service the server does not serve answers UNIMPLEMENTED."""
    await _expect_unimplemented(client.call(UnimplementedService.UnimplementedCall, Empty()))


#: Every case by name, in the order of the interop descriptions.
CASES: dict[str, Callable[[AsyncClient], Awaitable[None]]] = {
    "empty_unary": empty_unary,
    "large_unary": large_unary,
    "client_streaming": client_streaming,
    "server_streaming": server_streaming,
    "ping_pong": ping_pong,
    "empty_stream": empty_stream,
    "cancel_after_begin": cancel_after_begin,
    "cancel_after_first_response": cancel_after_first_response,
    "timeout_on_sleeping_server": timeout_on_sleeping_server,
    "custom_metadata": custom_metadata,
    "status_code_and_message": status_code_and_message,
    "special_status_message": special_status_message,
    "unimplemented_method": unimplemented_method,
    "unimplemented_service": unimplemented_service,
}


@dataclass(frozen=True)
class CaseResult:
    """How one case went."""

    name: str
    passed: bool
    detail: str
    seconds: float

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = f"{verdict} {self.name} ({self.seconds * 1000:.0f} ms)"
        return f"{text}: {self.detail}" if self.detail else text


async def run_case(client: AsyncClient, name: str, *, time_limit: float = 30.0) -> CaseResult:
    """Run the case called ``name``; a failure of any kind is a failed result, never a raise."""
    case = CASES[name]
    started = time.perf_counter()
    try:
        await asyncio.wait_for(case(client), timeout=time_limit)
    except asyncio.TimeoutError:
        detail = f"no result within {time_limit:g} s"
    except CaseError as exc:
        detail = str(exc)
    except RpcError as exc:
        detail = f"unexpected status {exc}"
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
    else:
        return CaseResult(name, True, "", time.perf_counter() - started)
    return CaseResult(name, False, detail, time.perf_counter() - started)


async def run_cases(
    client: AsyncClient,
    names: Sequence[str],
    *,
    report: Callable[[CaseResult], None] | None = None,
    time_limit: float = 30.0,
) -> list[CaseResult]:
    """Run the cases called ``names`` one after another; ``report`` sees each result."""
    unknown = [name for name in names if name not in CASES]
    if unknown:
        raise ValueError(f"unknown test case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    results = []
    for name in names:
        result = await run_case(client, name, time_limit=time_limit)
        if report is not None:
            report(result)
        results.append(result)
    return results
