"""Calling a declared service: the sync and asyncio clients side by side, and what they share.

``Client`` (``sync``) and ``AsyncClient`` (``aio``) share ``core.ClientCore``
(settings, channel, negotiation), ``calls`` (request streams, response
decoding) and ``coalescing`` (stream batches). Import them from ``transport``.
"""

from __future__ import annotations

from .aio import AsyncBidiStream as AsyncBidiStream
from .aio import AsyncClient as AsyncClient
from .aio import AsyncResponseStream as AsyncResponseStream
from .sync import BidiStream as BidiStream
from .sync import Client as Client
from .sync import ResponseStream as ResponseStream

__all__ = [
    "AsyncBidiStream",
    "AsyncClient",
    "AsyncResponseStream",
    "BidiStream",
    "Client",
    "ResponseStream",
]
