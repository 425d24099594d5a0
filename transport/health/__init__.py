"""Health checking: the standard ``grpc.health.v1`` service and its wire."""

from __future__ import annotations

from .service import HEALTH_SERVICE as HEALTH_SERVICE
from .service import Health as Health
from .service import LeaseHolder as LeaseHolder
from .service import check as check
from .wire import ServingStatus as ServingStatus
from .wire import decode_request as decode_request
from .wire import decode_response as decode_response
from .wire import encode_request as encode_request
from .wire import encode_response as encode_response

__all__ = [
    "HEALTH_SERVICE",
    "Health",
    "LeaseHolder",
    "ServingStatus",
    "check",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
]
