"""Pieces shared by the sync and asyncio clients."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .codec import DecodeError, JsonCodec
from .errors import RpcError
from .service import Method
from .status import StatusCode

MetadataTuple = tuple[tuple[str, "str | bytes"], ...]


@dataclass(frozen=True)
class CallInfo:
    """What a finished call reported besides its response: metadata both ways."""

    initial_metadata: MetadataTuple
    trailing_metadata: MetadataTuple


def as_metadata(items: Any) -> MetadataTuple:
    """Normalise grpcio metadata (tuples, ``_Metadatum``, ``aio.Metadata``) to pairs."""
    return tuple((key, value) for key, value in (items or ()))


def check_metadata(metadata: Sequence[tuple[str, str | bytes]] | None) -> MetadataTuple | None:
    """Validate call metadata before it reaches grpcio, with a clear error."""
    if not metadata:
        return None
    checked = tuple(metadata)
    for key, value in checked:
        if not isinstance(key, str) or not key or key != key.lower():
            raise ValueError(f"metadata key {key!r} must be a non-empty lower-case string")
        if key.startswith("grpc-"):
            raise ValueError(f"metadata key {key!r}: keys beginning 'grpc-' are reserved by gRPC")
        if key.endswith("-bin"):
            if not isinstance(value, bytes):
                raise ValueError(f"metadata key {key!r} ends in -bin, so its value must be bytes")
        elif not isinstance(value, str):
            raise ValueError(f"metadata key {key!r} needs a str value (or a key ending -bin)")
    return checked


def check_request(method: Method[Any, Any], request: Any) -> None:
    """Refuse a request of the wrong type before anything is sent."""
    if not isinstance(request, method.request_type):
        raise TypeError(
            f"{method.path} takes {method.request_type.__name__}, got {type(request).__name__}"
        )


def decode_response(codec: JsonCodec[Any], data: bytes) -> Any:
    """Decode a response; a payload that does not decode is INVALID_ARGUMENT with the path."""
    try:
        return codec.decode(data)
    except DecodeError as exc:
        raise RpcError(StatusCode.INVALID_ARGUMENT, f"response does not decode: {exc}") from None


def multicallable_kwargs(factory: Any) -> dict[str, Any]:
    """Extra keywords for ``channel.unary_unary`` and friends that this grpcio supports.

    Registered methods (grpcio >= 1.63) skip a per-call method lookup.
    """
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    return {"_registered_method": True} if "_registered_method" in parameters else {}
