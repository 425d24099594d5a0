"""The library's exceptions: one root, a shallow hierarchy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .status import StatusCode

if TYPE_CHECKING:  # the detail messages are declared with the codecs, which raise these errors
    from .error_details import ErrorDetail

__all__ = [
    "ChunkError",
    "DeclarationError",
    "DeclarationWarning",
    "DecodeError",
    "DecodeLimitError",
    "RpcError",
    "TransportError",
]

MetadataItems = Sequence[tuple[str, "str | bytes"]]
D = TypeVar("D")


class TransportError(Exception):
    """Raised for any error of this library; the root of its hierarchy."""


class DeclarationError(TransportError, TypeError):
    """Raised when a service, method or message declaration is not usable."""


class DeclarationWarning(UserWarning):
    """Warned when a declaration works at run time but type checkers will refuse it."""


class DecodeError(TransportError, ValueError):
    """Raised when bytes do not decode as the declared message (INVALID_ARGUMENT)."""


class DecodeLimitError(DecodeError):
    """Raised when a message or a batch frame is larger, or holds more, than its limits allow."""


class ChunkError(DecodeError):
    """Raised when chunks do not add up to the whole they announce (INVALID_ARGUMENT)."""


class RpcError(TransportError):
    """Raised when a call ends with a non-OK status.

    A handler raises it to end the call with ``code``, ``message``,
    JSON-serialisable ``details`` and typed ``error_details`` (``ErrorInfo``,
    ``BadRequest``... of :mod:`transport.error_details`); a client receives it
    with the same four, plus the metadata the server sent.
    """

    def __init__(
        self,
        code: StatusCode,
        message: str = "",
        details: Any = None,
        *,
        error_details: Iterable[ErrorDetail] = (),
        initial_metadata: MetadataItems = (),
        trailing_metadata: MetadataItems = (),
    ) -> None:
        super().__init__(code, message)
        self.code = StatusCode(code)
        self.message = message
        self.details = details
        self.error_details: tuple[ErrorDetail, ...] = tuple(error_details)
        self.initial_metadata: tuple[tuple[str, str | bytes], ...] = tuple(initial_metadata)
        self.trailing_metadata: tuple[tuple[str, str | bytes], ...] = tuple(trailing_metadata)

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}" if self.message else self.code.name
        if self.details is not None:
            text += f" (details: {self.details!r})"
        return text

    def __repr__(self) -> str:
        typed = f", error_details={self.error_details!r}" if self.error_details else ""
        return f"RpcError({self.code.name}, {self.message!r}, details={self.details!r}{typed})"

    def details_of(self, kind: type[D]) -> tuple[D, ...]:
        """The typed details of one kind, in the order sent: ``exc.details_of(ErrorInfo)``."""
        return tuple(detail for detail in self.error_details if isinstance(detail, kind))
