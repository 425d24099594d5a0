"""Everything between a message and its bytes: the codec contract and the codecs.

``Codec`` is the contract (grpc-go's ``encoding.Codec``: ``name``, ``encode``,
``decode``); :class:`~transport.JsonCodec` and :class:`~transport.ProtobufCodec`
implement it, one instance per message type, built once.
"""

from __future__ import annotations

from .base import Codec as Codec

__all__ = ["Codec"]
