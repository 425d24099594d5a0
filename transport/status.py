"""gRPC status codes, without importing grpc.

The owner runtime's plain state code raises errors with these codes; only the
adapter in ``transport._status_map`` converts them to ``grpc.StatusCode``.
"""

from __future__ import annotations

import enum

__all__ = ["StatusCode"]


class StatusCode(enum.IntEnum):
    """The canonical gRPC status codes (numbers as on the wire)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16
