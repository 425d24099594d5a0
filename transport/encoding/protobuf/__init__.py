"""The protobuf wire of hand-written declarations: field numbers and codec.

Number each field with ``Annotated[T, Number(n)]``; :class:`ProtobufCodec`
then encodes and decodes the message as protobuf. The ``.proto`` text and the
descriptors of a service are in :mod:`transport.proto`.
"""

from __future__ import annotations

import warnings
from typing import Any

from ._wellknown import NDARRAY_PROTO as NDARRAY_PROTO
from .codec import MAX_DEPTH as MAX_DEPTH
from .codec import ProtobufCodec as ProtobufCodec
from .schema import Number as Number
from .schema import is_numbered as is_numbered

__all__ = ["MAX_DEPTH", "NDARRAY_PROTO", "Number", "ProtobufCodec", "is_numbered"]


def __getattr__(name: str) -> Any:
    """``proto_file`` at its old path, for one release (it moved to :mod:`transport.proto`)."""
    if name == "proto_file":
        warnings.warn(
            "transport.encoding.protobuf.proto_file moved: import it from transport.proto",
            DeprecationWarning,
            stacklevel=2,
        )
        from ...proto import proto_file  # the deprecated alias: removed next release

        return proto_file
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
