"""Calling a declared service: the sync and asyncio clients side by side, and what they share.

``Client`` (``sync``) and ``AsyncClient`` (``aio``) share ``core.ClientCore``
(settings, channel, negotiation), ``calls`` (request streams, response
decoding) and ``coalescing`` (stream batches). Import them from ``transport``.
"""

from __future__ import annotations

from .aio import AsyncClient as AsyncClient
from .aio_streams import AsyncBidiStream as AsyncBidiStream
from .aio_streams import AsyncResponseStream as AsyncResponseStream
from .channel import Keepalive as Keepalive
from .channel import RetryPolicy as RetryPolicy
from .streams import BidiStream as BidiStream
from .streams import ResponseStream as ResponseStream
from .sync import Client as Client

__all__ = [
    "AsyncBidiStream",
    "AsyncClient",
    "AsyncResponseStream",
    "BidiStream",
    "Client",
    "Keepalive",
    "ResponseStream",
    "RetryPolicy",
]
