r"""Coalesced streams: the messages already queued travel as one gRPC message.

grpcio pays a fixed cost per streamed gRPC message (a core batch and a thread
hand-off at both ends), far more than a small message's own encoding. Between
two ends of this library that both announce ``transport-batches`` in their
metadata, a stream may carry a **batch frame** holding several messages::

    b"\xfftB1" | count n (u32 LE) | n lengths (u32 LE each) | the n messages, back to back

Each message inside is exactly what would otherwise have been one gRPC message
(JSON, or an attachment frame). The lead byte 0xFF is told apart from every
other payload by its first byte: no UTF-8 text contains 0xFF (so no JSON
message), 0xFF as the first byte of a protobuf message would be a tag of wire
type 7, which does not exist (so no protobuf message), and attachment frames
start with 0x00.

A sender only ever packs what is already queued, up to a byte cap: it never
waits to fill a batch, so a slow trickle still goes one message per gRPC
message, and a message too large for a batch goes alone, as before.

A receiver reads a frame no larger than it announced, whose count its size can
hold, before it makes a single view: anyone may send the lead byte, and a
frame of a million empty messages must cost its receiver nothing.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..errors import DecodeError, DecodeLimitError
from ..metadata import BATCHES_KEY

__all__ = [
    "CEILING",
    "KEY",
    "LEAD",
    "MAGIC",
    "announcement",
    "batch_limit",
    "fitting",
    "flatten",
    "is_batch",
    "pack",
    "single",
    "take",
    "unpack",
]

KEY = BATCHES_KEY
MAGIC = b"\xfftB1"
LEAD = MAGIC[0]
LEAD_BYTE = MAGIC[:1]
#: No batch is larger than this many bytes, whatever the peer accepts: well
#: under grpcio's 4 MiB default, and small enough that a receiver's view of
#: the stream stays fine-grained.
CEILING = 64 * 1024
_HEAD = 8  # magic and count
_COUNT = struct.Struct("<I")


def fitting(limit: int | None) -> int:
    """The batch size that fits a message limit (``None``: the default 4 MiB; -1: none)."""
    if limit is None or limit < 0:
        return CEILING
    return min(limit, CEILING)


def announcement(limit: int) -> tuple[str, str]:
    """The metadata entry saying: this end reads batches of up to ``limit`` bytes."""
    return (KEY, str(limit))


def batch_limit(metadata: Any) -> int:
    """The batch size the peer announced in ``metadata`` (pairs), capped; 0 if none."""
    for key, value in metadata or ():
        if key == KEY:
            if isinstance(value, str) and value.isdigit() and len(value) <= 10:
                return min(int(value), CEILING)
            return 0
    return 0


def pack(messages: Sequence[bytes]) -> bytes:
    """One batch frame holding ``messages`` (encoded messages, in order)."""
    count = len(messages)
    lengths = struct.pack(f"<{count + 1}I", count, *map(len, messages))
    return b"".join((MAGIC, lengths, *messages))


def take(queued: deque[bytes], limit: int) -> tuple[bytes, int]:
    """Pop from the front of ``queued`` what fits in one gRPC message of ``limit`` bytes.

    Returns the gRPC message and the bytes of the messages taken. One message
    alone goes as it is (however large: the transport's own limit then applies
    to it as without batching); two or more, as a batch.
    """
    first = queued.popleft()
    taken = len(first)
    room = limit - _HEAD - 4 - taken
    if not queued or room < 4 + len(queued[0]):
        return first, taken
    batch = [first]
    while queued and room >= 4 + len(queued[0]):
        data = queued.popleft()
        room -= 4 + len(data)
        taken += len(data)
        batch.append(data)
    return pack(batch), taken


def _checked(view: memoryview, limit: int | None) -> tuple[int, int]:
    """The count and the offset of the first message of batch frame ``view``, or a DecodeError.

    Everything that costs nothing is checked before anything is read: the
    frame's size against ``limit`` (what this end announced it reads), then
    its count against what its size can hold; only then are the lengths
    summed, one at a time, without a Python object kept per length.
    """
    size = len(view)
    if limit is not None and size > limit:
        raise DecodeLimitError(
            f"a batch frame of {size} bytes is over the {limit} bytes this end announced "
            f"it reads ({KEY}: {limit})"
        )
    if size < _HEAD or view[:4] != MAGIC:
        raise DecodeError("a batch frame is truncated")
    (count,) = _COUNT.unpack_from(view, 4)
    start = _HEAD + 4 * count
    if count == 0 or start > size:
        raise DecodeError(
            f"a batch frame announces {count} messages it cannot hold "
            f"(its {size} bytes hold at most {(size - _HEAD) // 4} lengths)"
        )
    if sum(length for (length,) in _COUNT.iter_unpack(view[_HEAD:start])) != size - start:
        raise DecodeError("the lengths in a batch frame do not add up to its size")
    return count, start


def _views(view: memoryview, count: int, start: int) -> Iterator[memoryview]:
    lengths = _COUNT.iter_unpack(view[_HEAD : _HEAD + 4 * count])
    for (length,) in lengths:
        yield view[start : start + length]
        start += length


def unpack(data: bytes | memoryview, limit: int | None) -> Iterator[memoryview]:
    """The messages of batch frame ``data``, as views of it (no copy), one at a time.

    ``limit`` is the size of batch this end announced it reads (``None``: no
    bound, for tests and tools). The whole frame is checked before the first
    message is handed out: :class:`~transport.errors.DecodeLimitError` when it
    is larger than ``limit`` (RESOURCE_EXHAUSTED), else
    :class:`~transport.errors.DecodeError` when it is malformed
    (INVALID_ARGUMENT). The views are made as they are taken, so a frame of
    many empty messages costs no memory per message until each is read.
    """
    view = memoryview(data)
    count, start = _checked(view, limit)
    return _views(view, count, start)


def single(data: bytes | memoryview) -> memoryview:
    """The one message of batch frame ``data`` (a request that says its sender reads batches).

    The count is read first, so a frame that declares more messages costs
    nothing to refuse. Its size is not bounded here: a request alone in a
    batch may be as large as any request (the transport's limit bounds it).
    """
    view = memoryview(data)
    if len(view) >= _HEAD and view[:4] == MAGIC:
        (count,) = _COUNT.unpack_from(view, 4)
        if count != 1:
            raise DecodeError(f"a batch frame of {count} messages where one was expected")
    _, start = _checked(view, None)
    return view[start:]


def is_batch(data: bytes | memoryview) -> bool:
    """Whether ``data`` is a batch frame (by its lead byte)."""
    return data[:1] == LEAD_BYTE


def flatten(items: Iterable[bytes]) -> list[bytes]:
    """Every message of ``items``, batches unpacked (for tests and tools)."""
    found: list[Any] = []
    for data in items:
        found.extend(unpack(data, None) if is_batch(data) else [data])
    return [bytes(message) for message in found]
