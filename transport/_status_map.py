"""The one place where exceptions become gRPC statuses and statuses become exceptions.

Server side: :func:`status_of` turns whatever a handler raised into
``(code, message, details)``, and :func:`abort` / :func:`abort_async` end a
call that the library itself refuses (health, security). Client side:
:func:`client_errors` is the one boundary every call path goes through; it turns
a grpcio error into the library's :class:`~transport.errors.RpcError` with
:func:`error_of`, details included. This is the only module that names
``grpc.StatusCode``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn, Protocol

import grpc
import grpc.aio
import msgspec

from .encoding import rich_status as _rich_status
from .errors import DecodeError, DecodeLimitError, RpcError
from .metadata import DETAILS_KEY
from .status import StatusCode

__all__ = [
    "STANDARD_DETAILS_KEY",
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


def status_of(exc: BaseException, method: str) -> tuple[StatusCode, str, bytes | None]:
    """Decide the status for an exception a handler raised; log the unexpected ones.

    Returns the code, the message and the JSON details (``None`` without details).
    """
    if isinstance(exc, RpcError):
        details = None
        if exc.details is not None:
            try:
                details = _details_encoder.encode(exc.details)
            except (TypeError, msgspec.EncodeError):
                log.error("%s: error details are not JSON-serialisable: %r", method, exc.details)
        return exc.code, exc.message, details
    if isinstance(exc, DecodeLimitError):
        return StatusCode.RESOURCE_EXHAUSTED, f"request is too large to decode: {exc}", None
    if isinstance(exc, DecodeError):
        return StatusCode.INVALID_ARGUMENT, f"request does not decode: {exc}", None
    if isinstance(exc, grpc.RpcError):
        # Raised by grpcio's request iterator when the client has gone away.
        return StatusCode.CANCELLED, "the call was cancelled", None
    if isinstance(exc, ResponseTypeError):
        log.error("%s: %s", method, exc)
        return StatusCode.INTERNAL, "the handler returned a response of the wrong type", None
    log.error("%s: unexpected error in handler", method, exc_info=exc)
    return StatusCode.UNKNOWN, "unexpected error in handler", None


def details_metadata(
    code: StatusCode, message: str, details: bytes | None
) -> tuple[tuple[str, bytes], ...]:
    """The trailers that carry an error's JSON ``details``: ours and gRPC's standard one."""
    if details is None:
        return ()
    try:
        standard = _rich_status.encode(code.value, message, msgspec.json.decode(details))
    except (RecursionError, ValueError, TypeError, msgspec.DecodeError):
        # Nested too deeply for a protobuf Value: the JSON trailer alone carries them.
        return ((DETAILS_KEY, details),)
    return ((DETAILS_KEY, details), (STANDARD_DETAILS_KEY, standard))


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
    details: Any = None
    standard: Any = None
    for key, value in trailing:
        if key == DETAILS_KEY and isinstance(value, bytes):
            details = _details(value)
        elif key == STANDARD_DETAILS_KEY and isinstance(value, bytes):
            standard = value
    if details is None and standard is not None and len(standard) <= MAX_DETAILS_BYTES:
        # A peer that sends only gRPC's standard trailer (grpc-go, grpcio-status).
        found = _rich_status.decode(standard)
        details = None if _rich_status.is_unset(found) else found
    return RpcError(
        code,
        message,
        details,
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
