"""Packed runs of varints written and read by numpy, a chunk at a time.

A long ``list[int]`` (or of bools, or enum members) becomes an array once, a
chunk at a time, and its varints are laid out with a few vectorised passes:
echoing 4 MiB of packed varints costs a few times its size, not a hundred.
Values the kind cannot hold make :func:`packer`'s function return ``None``, and
the element-by-element writer then says which value is wrong. :func:`unpacker`
reads a long run the same way; a run that does not read (truncated, a varint
of more than 10 bytes) is left to the element-by-element reader, which says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["CHUNK", "packer", "unpacker"]

#: Elements laid out per pass: the temporaries stay a few MiB whatever the list.
CHUNK = 1 << 16

_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "bool": (0, 1),
}
# The smallest value of each varint length (1 to 10 bytes).
_STEPS = [np.uint64(1 << (7 * k)) for k in range(1, 10)]


def _varints(values: np.ndarray[Any, Any]) -> bytes:
    """The varints of 64-bit unsigned ``values``, back to back."""
    lengths = np.ones(values.size, np.int64)
    for step in _STEPS:
        lengths += values >= step
    ends = np.cumsum(lengths)
    starts = ends - lengths
    out = np.empty(int(ends[-1]) if values.size else 0, np.uint8)
    for k in range(int(lengths.max()) if values.size else 0):
        live = np.flatnonzero(lengths > k) if k else slice(None)
        low = (values[live] >> np.uint64(7 * k)) & np.uint64(0x7F)
        more = (lengths[live] > k + 1).astype(np.uint8) << 7
        out[starts[live] + k] = low.astype(np.uint8) | more
    return out.tobytes()


def _as_array(chunk: Sequence[Any], low: int, high: int) -> np.ndarray[Any, Any] | None:
    """``chunk`` as 64-bit integers, or None if one is not an integer or is out of range."""
    try:
        array = np.asarray(chunk)
        if array.dtype.kind not in "iub" and high >= 2**63 and all(type(v) is int for v in chunk):
            array = np.asarray(chunk, np.uint64)  # past 2**63 beside smaller ones: not int64
    except (ValueError, TypeError, OverflowError):
        return None
    if array.ndim != 1 or array.dtype.kind not in "iub":
        return None
    if array.size and (array.min() < low or array.max() > high):
        return None
    return array.astype(np.int64 if array.dtype.kind != "u" else np.uint64)


def packer(kind: str) -> Callable[[Sequence[Any]], bytearray | None] | None:
    """The vectorised writer of a packed run of ``kind`` (``enum``: by number), if it has one."""
    if kind == "enum":
        int32 = packer("int32")
        assert int32 is not None
        return lambda values: int32([getattr(v, "number", v) for v in values])
    if kind not in _RANGES:
        return None
    low, high = _RANGES[kind]
    zigzag = kind.startswith("sint")

    def pack(values: Sequence[Any]) -> bytearray | None:
        out = bytearray()
        for start in range(0, len(values), CHUNK):
            array = _as_array(values[start : start + CHUNK], low, high)
            if array is None:
                return None
            if zigzag:  # (n << 1) ^ (n >> 63), on the two's complement bits
                array = (array << 1) ^ (array >> 63)
            out += _varints(array.astype(np.uint64))
        return out

    return pack


def _signed(bits: int) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    if bits == 64:
        return lambda values: values.view(np.int64)
    return lambda values: (values & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)


def _zigzag(bits: int) -> Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]:
    def read(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if bits == 32:
            values = values & np.uint64(0xFFFFFFFF)
        low = (values & np.uint64(1)).view(np.int64)
        result: np.ndarray[Any, Any] = (values >> np.uint64(1)).view(np.int64) ^ -low
        return result

    return read


_READS: dict[str, Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]]] = {
    "int32": _signed(32),
    "int64": _signed(64),
    "uint32": lambda values: values & np.uint64(0xFFFFFFFF),
    "uint64": lambda values: values,
    "sint32": _zigzag(32),
    "sint64": _zigzag(64),
    "bool": lambda values: values != 0,
}


def _read_chunk(raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
    """The varints of ``raw`` (whole ones, back to back) as 64-bit unsigned, or None."""
    ends = np.flatnonzero(raw < 0x80)
    if not ends.size or ends[-1] != raw.size - 1:
        return None
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10:
        return None
    values = (raw[starts] & 0x7F).astype(np.uint64)
    for k in range(1, longest):
        live = np.flatnonzero(lengths > k)
        part = (raw[starts[live] + k] & 0x7F).astype(np.uint64)
        values[live] |= part << np.uint64(7 * k)
    return values


def unpacker(kind: str) -> Callable[[bytes, int, int], list[Any] | None] | None:
    """The vectorised reader of a packed run of ``kind`` between two positions, if it has one."""
    convert = _READS.get(kind)
    if convert is None:
        return None
    step = CHUNK * 4  # bytes per pass

    def unpack(buf: bytes, pos: int, stop: int) -> list[Any] | None:
        raw = np.frombuffer(buf, np.uint8, stop - pos, pos)
        out: list[Any] = []
        start = 0
        while start < raw.size:
            chunk = raw[start : start + step]
            if start + step < raw.size:  # up to the last whole varint of the chunk
                whole = np.flatnonzero(chunk < 0x80)
                if not whole.size:
                    return None
                chunk = chunk[: int(whole[-1]) + 1]
            values = _read_chunk(chunk)
            if values is None:
                return None
            out += convert(values).tolist()
            start += chunk.size
        return out

    return unpack
