"""Error details as gRPC's standard ``grpc-status-details-bin`` trailer.

The trailer holds a ``google.rpc.Status`` protobuf: the status code, its
message and the details as ``google.protobuf.Any`` messages. The JSON details
of an :class:`~transport.RpcError` travel there as one ``Any`` of a
``google.protobuf.Value``, which grpc-go's ``status.FromError``, grpcio-status's
``rpc_status.from_call`` and grpcurl read.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from ..errors import DecodeError
from ..metadata import STANDARD_DETAILS_KEY
from .protobuf import Number, ProtobufCodec
from .protobuf._wellknown import _value_write, decode_struct, decode_value
from .protobuf._wire import Malformed
from .scalars import Int32

__all__ = ["KEY", "VALUE_TYPE_URL", "decode", "encode", "is_unset"]

KEY = STANDARD_DETAILS_KEY
VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"
STRUCT_TYPE_URL = "type.googleapis.com/google.protobuf.Struct"
_UNSET = object()


class ProtoAny(msgspec.Struct, frozen=True):
    """``google.protobuf.Any``: a message's bytes and the URL naming its type."""

    type_url: Annotated[str, Number(1)] = ""
    value: Annotated[bytes, Number(2)] = b""


class RpcStatus(msgspec.Struct, frozen=True):
    """``google.rpc.Status``: a status code, its message and typed details."""

    code: Annotated[int, Int32, Number(1)] = 0
    message: Annotated[str, Number(2)] = ""
    details: Annotated[list[ProtoAny], Number(3)] = []


_CODEC = ProtobufCodec(RpcStatus)


def encode(code: int, message: str, details: Any) -> bytes:
    """The trailer's value for a status whose details are the JSON value ``details``."""
    value = ProtoAny(type_url=VALUE_TYPE_URL, value=_value_write(details))
    return _CODEC.encode(RpcStatus(code=code, message=message, details=[value]))


def decode(data: bytes) -> Any:
    """The JSON details in a trailer's value; ``_UNSET`` when it holds none this reads."""
    try:
        status = _CODEC.decode(data)
        for detail in status.details:
            if detail.type_url == VALUE_TYPE_URL:
                return decode_value(detail.value)
            if detail.type_url == STRUCT_TYPE_URL:
                return decode_struct(detail.value)
    except (DecodeError, Malformed, RecursionError, ValueError):
        pass
    return _UNSET


def is_unset(value: Any) -> bool:
    """Whether :func:`decode` found no details it reads."""
    return value is _UNSET
