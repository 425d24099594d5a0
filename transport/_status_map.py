"""The one place where exceptions become gRPC statuses and statuses become exceptions.

Server side: :func:`status_of` turns whatever a handler raised into
``(code, message, details)``. Client side: :func:`error_of` turns a grpcio error
into the library's :class:`~transport.errors.RpcError`, details included.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import grpc
import msgspec

from . import _rich_status
from .codec import DecodeError, DecodeLimitError
from .errors import RpcError
from .status import StatusCode

__all__ = [
    "DETAILS_KEY",
    "STANDARD_DETAILS_KEY",
    "details_metadata",
    "error_of",
    "grpc_code",
    "status_of",
]

log = logging.getLogger("transport")

#: Trailing metadata key that carries an error's JSON details.
DETAILS_KEY = "transport-error-details-bin"
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
    grpc_status = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    code = _FROM_GRPC.get(grpc_status, StatusCode.UNKNOWN)
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
