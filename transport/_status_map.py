"""The one place where exceptions become gRPC statuses and statuses become exceptions.

Server side: :func:`status_of` turns whatever a handler raised into a
:class:`Status` (code, message, JSON details, typed details; a decode error
gets a ``BadRequest`` naming the field) and :func:`details_metadata` into the
trailers that carry its details; and :func:`abort` / :func:`abort_async` end a
call that the library itself refuses (health, security). Client side:
:func:`client_errors` is the one boundary every call path goes through; it turns
a grpcio error into the library's :class:`~transport.errors.RpcError` with
:func:`error_of`, details included (typed ones too, bounded). This is the only
module that names ``grpc.StatusCode``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, NoReturn, Protocol

import grpc
import grpc.aio
import msgspec

from .encoding import rich_status as _rich_status
from .encoding.rich_status import RawDetail
from .error_details import BadRequest, ErrorDetail, packed, unpacked
from .errors import DecodeError, DecodeLimitError, RpcError
from .metadata import DETAILS_KEY
from .status import StatusCode

__all__ = [
    "STANDARD_DETAILS_KEY",
    "Status",
    "abort",
    "abort_async",
    "client_errors",
    "details_metadata",
    "error_of",
    "grpc_code",
    "status_code",
    "status_of",
    "task_cancelling",
]

log = logging.getLogger("transport")

#: Trailing metadata key that carries an error's JSON details.
#: gRPC's own trailer for them: a ``google.rpc.Status`` protobuf, read by other gRPC stacks.
STANDARD_DETAILS_KEY = _rich_status.KEY

_TO_GRPC = {StatusCode(code.value[0]): code for code in grpc.StatusCode}
_FROM_GRPC = {code: StatusCode(code.value[0]) for code in grpc.StatusCode}
_details_encoder = msgspec.json.Encoder()
#: Error details larger than this are dropped, not decoded (grpc-core caps metadata anyway).
MAX_DETAILS_BYTES = 64 * 1024
#: Typed details a server sends at most: past grpc-core's 8 KiB soft limit on a
#: peer's metadata some calls would fail with RESOURCE_EXHAUSTED instead.
MAX_SENT_DETAILS_BYTES = 6 * 1024
#: The longest decode error told to the client, in characters.
MAX_DECODE_ERROR_CHARS = 1024
#: msgspec's (and the protobuf codec's) path at the end of a decode error.
_AT_PATH = re.compile(r"(.*) - at `\$\.?([^`]*)`", re.DOTALL)
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


class Status(NamedTuple):
    """The status a call ends with, as the trailers carry it."""

    code: StatusCode
    message: str
    details: bytes | None = None  # JSON
    error_details: tuple[RawDetail, ...] = ()


class ResponseTypeError(TypeError):
    """Raised when a handler returns something other than its declared response type."""


def grpc_code(code: StatusCode) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` for one of ours."""
    return _TO_GRPC[code]


def status_code(code: grpc.StatusCode | None) -> StatusCode:
    """Ours for a ``grpc.StatusCode`` (UNKNOWN for ``None``)."""
    return StatusCode.UNKNOWN if code is None else _FROM_GRPC.get(code, StatusCode.UNKNOWN)


def abort(context: grpc.ServicerContext, code: StatusCode, message: str) -> NoReturn:
    """End a sync call that the library refuses (grpcio raises to unwind the handler)."""
    context.abort(_TO_GRPC[code], message)
    raise AssertionError("grpc.ServicerContext.abort() returned")  # pragma: no cover


async def abort_async(
    context: grpc.aio.ServicerContext[Any, Any], code: StatusCode, message: str
) -> NoReturn:
    """End an asyncio call that the library refuses."""
    await context.abort(_TO_GRPC[code], message)
    raise AssertionError("grpc.aio.ServicerContext.abort() returned")  # pragma: no cover


class _Requests(Protocol):
    """A client's stream of requests, whose own failure explains an ended call."""

    error: Exception | None

    def raise_error(self) -> None: ...


@contextlib.contextmanager
def client_errors(requests: _Requests | None = None) -> Iterator[None]:
    """The client's error boundary: grpcio's errors become the library's, on every call path.

    A ``grpc.RpcError`` becomes an :class:`RpcError` (code, message, details,
    metadata). When the client's own request stream failed, grpcio reports a
    cancel (UNKNOWN on sync channels, CancelledError on asyncio ones): the
    request stream's exception is raised instead, where the requests came from.
    A cancel of the calling task itself stays a cancel.
    """
    try:
        yield
    except grpc.RpcError as exc:
        if requests is not None and not task_cancelling():
            requests.raise_error()
        raise error_of(exc) from None
    except asyncio.CancelledError:
        if requests is not None and requests.error is not None and not task_cancelling():
            requests.raise_error()
        raise


def task_cancelling() -> bool:
    """Whether the current task is being cancelled (Python >= 3.11 can tell)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: a sync call
        return False
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def status_of(exc: BaseException, method: str) -> Status:
    """Decide the status for an exception a handler raised; log the unexpected ones.

    Returns the code, the message, the JSON details (``None`` without them) and
    the typed details packed; a decode error's names the field at fault in a
    ``BadRequest``.
    """
    if isinstance(exc, RpcError):
        details = None
        if exc.details is not None:
            try:
                details = _details_encoder.encode(exc.details)
            except (TypeError, msgspec.EncodeError):
                log.error("%s: error details are not JSON-serialisable: %r", method, exc.details)
        return Status(exc.code, exc.message, details, _packed(exc.error_details, method))
    if isinstance(exc, DecodeLimitError):
        message = f"request is too large to decode: {_shortened(str(exc))}"
        return Status(StatusCode.RESOURCE_EXHAUSTED, message)
    if isinstance(exc, DecodeError):
        text = _shortened(str(exc))
        message = f"request does not decode: {text}"
        return Status(StatusCode.INVALID_ARGUMENT, message, None, _bad_request(text))
    if isinstance(exc, grpc.RpcError):
        # Raised by grpcio's request iterator when the client has gone away.
        return Status(StatusCode.CANCELLED, "the call was cancelled")
    if isinstance(exc, ResponseTypeError):
        log.error("%s: %s", method, exc)
        return Status(StatusCode.INTERNAL, "the handler returned a response of the wrong type")
    log.error("%s: unexpected error in handler", method, exc_info=exc)
    return Status(StatusCode.UNKNOWN, "unexpected error in handler")


def _packed(details: Iterable[ErrorDetail], method: str) -> tuple[RawDetail, ...]:
    """A handler's typed details as sent: those that encode, within the count and size bounds."""
    sent: list[RawDetail] = []
    size = 0
    for detail in details:
        try:
            raw = packed(detail)
        except (TypeError, ValueError) as exc:
            log.error("%s: error detail not sent: %s", method, exc)
            continue
        size += len(raw.type_url) + len(raw.value) + 8
        if size > MAX_SENT_DETAILS_BYTES or len(sent) == _rich_status.MAX_DETAILS:
            log.error(
                "%s: error details past the first %d or %d bytes not sent (peers refuse larger "
                "trailers)",
                method,
                _rich_status.MAX_DETAILS,
                MAX_SENT_DETAILS_BYTES,
            )
            break
        sent.append(raw)
    return tuple(sent)


def _shortened(text: str) -> str:
    """A decode error's text without the middle of a long value it quotes (the path is kept).

    msgspec quotes a wrong value whole; echoed in the status (twice, with the
    ``BadRequest``) it would take the trailers past what the client accepts.
    """
    if len(text) <= MAX_DECODE_ERROR_CHARS:
        return text
    half = MAX_DECODE_ERROR_CHARS // 2
    return f"{text[:half]}...{text[-half:]}"


def _bad_request(text: str) -> tuple[RawDetail, ...]:
    """The ``BadRequest`` of a decode error whose text names a field (msgspec's ``$.a[2].b``)."""
    found = _AT_PATH.fullmatch(text)
    description, path = (found[1], found[2]) if found else (text, "")
    missing = _MISSING_FIELD.search(description)
    if missing is not None:
        path = f"{path}.{missing[1]}" if path else missing[1]
    if not path:
        return ()
    violation = BadRequest.FieldViolation(field=path, description=description)
    return (packed(BadRequest(field_violations=[violation])),)


def details_metadata(
    code: StatusCode,
    message: str,
    details: bytes | None,
    error_details: Sequence[RawDetail] = (),
) -> tuple[tuple[str, bytes], ...]:
    """The trailers that carry an error's details: JSON in ours, all in gRPC's standard one."""
    ours = () if details is None else ((DETAILS_KEY, details),)
    if details is None and not error_details:
        return ()
    try:
        json = _rich_status.unset() if details is None else msgspec.json.decode(details)
        standard = _rich_status.encode(code.value, message, json, error_details)
    except (RecursionError, ValueError, TypeError, msgspec.DecodeError):
        # Nested too deeply for a protobuf Value: the JSON trailer alone carries them.
        if not error_details:
            return ours
        standard = _rich_status.encode(code.value, message, _rich_status.unset(), error_details)
    return (*ours, (STANDARD_DETAILS_KEY, standard))


def _metadata(items: Any) -> tuple[tuple[str, str | bytes], ...]:
    return tuple((key, value) for key, value in (items or ()))


def error_of(exc: grpc.RpcError) -> RpcError:
    """Turn a grpcio call error into an :class:`RpcError` with code, message and details."""
    code_fn = getattr(exc, "code", None)
    code = status_code(code_fn() if callable(code_fn) else None)
    details_fn = getattr(exc, "details", None)
    message = (details_fn() if callable(details_fn) else None) or ""
    trailing = _metadata(_call(exc, "trailing_metadata"))
    initial = _metadata(_call(exc, "initial_metadata"))
    ours = standard = None
    for key, value in trailing:
        if key == DETAILS_KEY and isinstance(value, bytes):
            ours = value
        elif key == STANDARD_DETAILS_KEY and isinstance(value, bytes):
            standard = value
    details = None if ours is None else _details(ours)
    typed: tuple[ErrorDetail, ...] = ()
    if standard is not None and len(standard) <= MAX_DETAILS_BYTES:
        # Also the only trailer of other stacks' servers (grpc-go, grpcio-status).
        found = _rich_status.decode(standard)
        typed = tuple(unpacked(raw) for raw in found.details)
        if details is None and not _rich_status.is_unset(found.json):
            details = found.json
    return RpcError(
        code,
        message,
        details,
        error_details=typed,
        initial_metadata=initial,
        trailing_metadata=[
            (k, v) for k, v in trailing if k not in (DETAILS_KEY, STANDARD_DETAILS_KEY)
        ],
    )


def _details(value: bytes) -> Any:
    """A server's JSON error details, or ``None`` when they do not decode (a broken server's)."""
    if len(value) > MAX_DETAILS_BYTES:
        return None
    try:
        return msgspec.json.decode(value)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None


def _call(exc: grpc.RpcError, name: str) -> Sequence[Any] | None:
    fn = getattr(exc, name, None)
    if not callable(fn):
        return None
    try:
        result: Sequence[Any] | None = fn()
    except Exception:  # a call object that never started has no metadata
        return None
    return result
