"""The two protobuf messages of ``grpc.health.v1``, encoded and decoded by hand.

``HealthCheckRequest{string service = 1}`` and ``HealthCheckResponse{ServingStatus
status = 1}``: a few bytes each, so no protoc and no protobuf runtime. Unknown
fields are skipped, as protobuf does; malformed bytes raise ``ValueError``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

__all__ = [
    "ServingStatus",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
]


class ServingStatus(enum.IntEnum):
    """``HealthCheckResponse.ServingStatus``: the numbers are the wire values."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3  # only sent by Watch


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value & (2**64 - 1), pos
    raise ValueError("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield ``(field number, value)`` of a protobuf message; unknown wire types fail."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: int | bytes
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            if pos + width > len(data):
                raise ValueError("truncated fixed-width field")
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        yield number, value


def encode_request(service: str) -> bytes:
    """The protobuf bytes of ``HealthCheckRequest{service}``."""
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def decode_request(data: bytes) -> str:
    """The service named by ``HealthCheckRequest`` bytes; raise ValueError if malformed."""
    service = ""
    for number, value in _fields(data):
        if number == 1:  # the last occurrence wins, as in protobuf
            if not isinstance(value, bytes):
                raise ValueError("service is not length-delimited")
            service = value.decode("utf-8")
    return service


def encode_response(status: ServingStatus) -> bytes:
    """The protobuf bytes of ``HealthCheckResponse{status}`` (empty for UNKNOWN)."""
    return b"\x08" + _varint(int(status)) if status else b""


def decode_response(data: bytes) -> ServingStatus:
    """The status in ``HealthCheckResponse`` bytes; raise ValueError if malformed."""
    status = 0
    for number, value in _fields(data):
        if number == 1:
            if not isinstance(value, int):
                raise ValueError("status is not a varint")
            status = value
    try:
        return ServingStatus(status)
    except ValueError:
        raise ValueError(f"unknown serving status {status}") from None
