"""The protobuf wire of hand-written declarations: field numbers, codec and ``.proto`` export.

Number each field with ``Annotated[T, Number(n)]``; :class:`ProtobufCodec`
then encodes and decodes the message as protobuf, and :func:`proto_file`
writes the ``.proto`` of a service (``python -m transport proto MODULE:Service``).
"""

from __future__ import annotations

from .codec import MAX_DEPTH as MAX_DEPTH
from .codec import ProtobufCodec as ProtobufCodec
from .export import proto_file as proto_file
from .schema import Number as Number
from .schema import is_numbered as is_numbered

__all__ = ["MAX_DEPTH", "Number", "ProtobufCodec", "is_numbered", "proto_file"]
