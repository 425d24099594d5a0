"""Error details as gRPC's standard ``grpc-status-details-bin`` trailer.

The trailer holds a ``google.rpc.Status`` protobuf: the status code, its
message and the details as ``google.protobuf.Any`` messages. The JSON details
of an :class:`~transport.RpcError` travel there as one ``Any`` of a
``google.protobuf.Value`` (first, so readers that look at ``details[0]`` find
them), then each typed detail (``google.rpc.ErrorInfo``...) as its own ``Any``;
grpc-go's ``status.FromError``, grpcio-status's ``rpc_status.from_call``,
grpc-js and grpcurl read them. This module knows the bytes only: what a detail
means is :mod:`transport.error_details`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from ..errors import DecodeError
from ..metadata import STANDARD_DETAILS_KEY
from .protobuf import Number, ProtobufCodec
from .protobuf._wellknown import _value_write, decode_struct, decode_value
from .protobuf._wire import Malformed
from .scalars import Int32

__all__ = [
    "KEY",
    "MAX_DETAILS",
    "VALUE_TYPE_URL",
    "RawDetail",
    "RichStatus",
    "decode",
    "encode",
    "is_unset",
    "unset",
]

KEY = STANDARD_DETAILS_KEY
VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"
STRUCT_TYPE_URL = "type.googleapis.com/google.protobuf.Struct"
#: Details read from one trailer; a peer's further ones are ignored.
MAX_DETAILS = 64
_UNSET = object()


class RawDetail(msgspec.Struct, frozen=True):
    """``google.protobuf.Any``: a detail as its type URL and the bytes of its message.

    An error's details of a type this library does not know arrive as these,
    kept rather than dropped; a handler may send its own message types packed
    this way (``RawDetail(type_url="type.googleapis.com/acme.v1.Hint",
    value=ProtobufCodec(Hint).encode(hint))``).
    """

    type_url: Annotated[str, Number(1)] = ""
    value: Annotated[bytes, Number(2)] = b""


class _Status(msgspec.Struct, frozen=True):
    """``google.rpc.Status``: a status code, its message and typed details."""

    code: Annotated[int, Int32, Number(1)] = 0
    message: Annotated[str, Number(2)] = ""
    details: Annotated[list[RawDetail], Number(3)] = []


_CODEC = ProtobufCodec(_Status)


class RichStatus(msgspec.Struct, frozen=True):
    """What a trailer holds: the JSON details (or :func:`is_unset`) and the other details."""

    json: Any
    details: tuple[RawDetail, ...]


def encode(code: int, message: str, json: Any, details: Sequence[RawDetail] = ()) -> bytes:
    """The trailer's value: the JSON value ``json`` (unless unset) first, then ``details``.

    Raises ``ValueError``/``TypeError``/``RecursionError`` when ``json`` has no
    ``google.protobuf.Value`` form (nested too deeply).
    """
    packed = [] if json is _UNSET else [RawDetail(VALUE_TYPE_URL, _value_write(json))]
    return _CODEC.encode(_Status(code=code, message=message, details=packed + list(details)))


def decode(data: bytes) -> RichStatus:
    """The details in a trailer's value: the first ``Value``/``Struct`` is the JSON details.

    At most :data:`MAX_DETAILS` are read; a trailer that does not decode holds none.
    """
    try:
        status = _CODEC.decode(data)
    except (DecodeError, RecursionError, ValueError):
        return RichStatus(_UNSET, ())
    json: Any = _UNSET
    details: list[RawDetail] = []
    for detail in status.details[:MAX_DETAILS]:
        if json is _UNSET and detail.type_url in (VALUE_TYPE_URL, STRUCT_TYPE_URL):
            json = _json(detail)
            if json is not _UNSET:
                continue
        details.append(detail)
    return RichStatus(json, tuple(details))


def _json(detail: RawDetail) -> Any:
    read = decode_value if detail.type_url == VALUE_TYPE_URL else decode_struct
    try:
        return read(detail.value)
    except (DecodeError, Malformed, RecursionError, ValueError):
        return _UNSET


def unset() -> Any:
    """The marker of no JSON details, for :func:`encode`."""
    return _UNSET


def is_unset(value: Any) -> bool:
    """Whether :func:`decode` found no JSON details."""
    return value is _UNSET
