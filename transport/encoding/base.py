"""The codec contract: what turns one message type into bytes and back."""

from __future__ import annotations

from typing import ClassVar, Protocol, TypeVar, runtime_checkable

__all__ = ["Codec"]

T = TypeVar("T")


@runtime_checkable
class Codec(Protocol[T]):
    """A wire format for one message type, as grpc-go's ``encoding.Codec``: three members.

    ``encode`` never fails for a message of the type; ``decode`` raises
    :class:`~transport.DecodeError` naming the field path for bytes that are not
    a message of the type (the server answers INVALID_ARGUMENT).
    """

    #: The wire's name (``"json"``, ``"protobuf"``), as announced in metadata.
    name: ClassVar[str]

    def encode(self, message: T) -> bytes:
        """The message's bytes on this wire."""
        ...

    def decode(self, data: bytes) -> T:
        """The message in ``data``; raise ``DecodeError`` naming the field path."""
        ...
