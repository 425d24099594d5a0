r"""Large arrays and bytes fields without base64: splicing and negotiated attachments.

Two ways to move a big buffer faster than msgspec's base64 inside the JSON:

* **Spliced JSON** (the default wire, understood by every JSON peer): each
  large array is base64-encoded with a SIMD encoder and the JSON is joined
  around it, instead of being written character by character into the
  document.
* **Attachments** (only between two ends of this library that both announced
  ``transport-attachments: 1`` in their metadata): the message travels as a
  frame whose JSON header names, by path, the fields carried as raw buffers
  after it. A frame starts with a NUL byte, which no JSON text can, so a
  receiver tells the two apart by their first byte::

      b"\\0tA1" | header length (u32 LE) | header JSON | pad to 16 | buffers, each padded to 16
      header JSON = {"message": <the message, null at each attachment>,
                     "attachments": [{"path": [...], "offset": n, "length": n}, ...]}

  Offsets count from the first buffer. Received arrays are views over the
  received bytes (``numpy.frombuffer``), with no copy.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
import numpy as np
import pybase64

from ..metadata import ATTACHMENTS_KEY
from .ndarray import encode_ndarray

__all__ = [
    "ANNOUNCEMENT",
    "FRAME_BYTES",
    "KEY",
    "MAGIC",
    "MAX_HEADER_BYTES",
    "Contents",
    "announce",
    "announced",
    "carries",
    "contents",
    "decode_framed",
    "encode_framed",
    "encode_spliced",
    "negotiates",
]

KEY = ATTACHMENTS_KEY
#: The metadata entry both ends send to say they read and write frames.
ANNOUNCEMENT = (KEY, "1")
MAGIC = b"\x00tA1"
# Buffers below this many bytes stay inline as base64: a reference costs more.
THRESHOLD = 1024
#: A message goes as a frame only when its arrays and buffers hold at least this
#: many bytes in all: below, JSON encodes and decodes faster (a round trip of a
#: float32 array measured 7.5 vs 11.5 µs at 1 KiB, 8.5 vs 10.9 at 4 KiB, 22.9
#: vs 11.0 at 16 KiB).
FRAME_BYTES = 8 * 1024
#: The largest frame header read. A header is decoded before its type applies
#: (unknown fields included), so it is kept small; a message whose JSON beside
#: its buffers is larger goes as plain JSON instead.
MAX_HEADER_BYTES = 256 * 1024
_ALIGN = 16
_PADDING = bytes(_ALIGN)
# A placeholder no real string collides with: JSON-safe, random per process.
_TOKEN = f"transport-splice-{secrets.token_hex(16)}-"

Hook = Callable[[Any], Any]
_BUFFERS = (bytes, bytearray, memoryview)


class Contents(msgspec.Struct, frozen=True):
    """What a message type can carry: arrays (spliced into JSON) and any buffers (attached)."""

    arrays: bool
    buffers: bool


def contents(type_: Any) -> Contents:
    """Inspect ``type_`` once, at codec construction, for array and bytes fields."""
    arrays = buffers = False
    seen: set[int] = set()
    pending: list[Any] = [mi.type_info(type_)]
    while pending:
        info = pending.pop()
        if id(info) in seen:
            continue
        seen.add(id(info))
        if isinstance(info, mi.CustomType) and issubclass(info.cls, np.ndarray):
            arrays = buffers = True
        elif isinstance(info, (mi.BytesType, mi.ByteArrayType, mi.MemoryViewType)):
            buffers = True
        elif isinstance(
            info, (mi.StructType, mi.DataclassType, mi.TypedDictType, mi.NamedTupleType)
        ):
            pending.extend(field.type for field in info.fields)
        elif isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
            pending.append(info.item_type)
        elif isinstance(info, mi.TupleType):
            pending.extend(info.item_types)
        elif isinstance(info, mi.DictType):
            pending.extend((info.key_type, info.value_type))
        elif isinstance(info, mi.UnionType):
            pending.extend(info.types)
        elif isinstance(info, mi.Metadata):
            pending.append(info.type)
    return Contents(arrays, buffers)


# -- spliced JSON -----------------------------------------------------------------


def encode_spliced(message: Any, fallback: Hook) -> bytes:
    """JSON of ``message`` with each large array's base64 joined in, not written char by char."""
    buffers: list[memoryview] = []

    def hook(obj: Any) -> Any:
        if not isinstance(obj, np.ndarray):
            return fallback(obj)
        wire = encode_ndarray(obj)
        data = wire["data"]
        if data.nbytes >= THRESHOLD:
            wire["data"] = f"{_TOKEN}{len(buffers)}"
            buffers.append(data)
        return wire

    document = msgspec.json.encode(message, enc_hook=hook)
    if not buffers:
        return document
    view = memoryview(document)
    pieces: list[Any] = []
    position = 0
    for index, buffer in enumerate(buffers):
        marker = f"{_TOKEN}{index}".encode()
        found = document.index(marker + b'"', position)
        pieces += (view[position:found], pybase64.b64encode(buffer))
        position = found + len(marker)
    pieces.append(view[position:])
    return b"".join(pieces)


# -- attachment frames ------------------------------------------------------------


class _Reference(msgspec.Struct, frozen=True):
    path: list[str | int]
    offset: Annotated[int, msgspec.Meta(ge=0)]
    length: Annotated[int, msgspec.Meta(ge=0)]


class _Header(msgspec.Struct):
    message: Any
    attachments: list[_Reference] = []


_HEADER_DECODER = msgspec.json.Decoder(_Header)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def _detach(node: Any, path: list[str | int], found: list[tuple[list[str | int], Any]]) -> None:
    """Replace every large buffer under ``node`` (in place) by ``None``, noting its path."""
    pairs = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in pairs:
        if isinstance(value, (dict, list)):
            _detach(value, [*path, key], found)
        elif isinstance(value, _BUFFERS) and memoryview(value).nbytes >= THRESHOLD:
            found.append(([*path, key], value))
            node[key] = None


def encode_framed(message: Any, hook: Hook) -> bytes:
    """``message`` as an attachment frame (or plain JSON when it holds no large buffer)."""
    tree = msgspec.to_builtins(message, enc_hook=hook, builtin_types=_BUFFERS)
    found: list[tuple[list[str | int], Any]] = []
    _detach(tree, [], found)
    if not found:
        return msgspec.json.encode(tree)
    references = []
    pieces: list[Any] = []
    offset = 0
    for path, buffer in found:
        length = memoryview(buffer).nbytes
        references.append({"path": path, "offset": offset, "length": length})
        pieces += (buffer, _PADDING[: _aligned(length) - length])
        offset = _aligned(offset + length)
    header = msgspec.json.encode({"message": tree, "attachments": references})
    if len(header) > MAX_HEADER_BYTES:
        return encode_spliced(message, hook)
    start = 8 + len(header)
    lead = [MAGIC, len(header).to_bytes(4, "little"), header, _PADDING[: _aligned(start) - start]]
    return b"".join(lead + pieces)


def _place(tree: Any, path: list[str | int], value: memoryview) -> None:
    if not path:
        raise msgspec.ValidationError("an attachment path is empty")
    node = tree
    for step in path[:-1]:
        node = _child(node, step, path)
    last = path[-1]
    _child(node, last, path)  # checks that the slot exists
    if node[last] is not None:
        raise msgspec.ValidationError(f"attachment path {path} does not point at a null")
    node[last] = value


def _child(node: Any, step: str | int, path: list[str | int]) -> Any:
    if isinstance(node, dict) and isinstance(step, str) and step in node:
        return node[step]
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return node[step]
    raise msgspec.ValidationError(f"attachment path {path} is not in the message")


def decode_framed(data: bytes | memoryview, type_: Any, hook: Callable[[type, Any], Any]) -> Any:
    """The message in attachment frame ``data``; buffers become views of ``data``."""
    view = memoryview(data)
    if len(data) < 8:
        raise msgspec.ValidationError("attachment frame is truncated")
    length = int.from_bytes(view[4:8], "little")
    if length > MAX_HEADER_BYTES:
        # The header is decoded without its type: keep what it can build small.
        raise msgspec.ValidationError(
            f"attachment frame header of {length} bytes is over {MAX_HEADER_BYTES}"
        )
    start = _aligned(8 + length)
    if start > len(data):
        raise msgspec.ValidationError("attachment frame header is truncated")
    header = _HEADER_DECODER.decode(view[8 : 8 + length])
    buffers = view[start:]
    end = 0  # each buffer lies inside the frame, after the one before: none overlap
    for reference in sorted(header.attachments, key=lambda r: r.offset):
        if reference.offset < end:
            raise msgspec.ValidationError(
                f"attachment at {reference.path} overlaps the one before it"
            )
        end = reference.offset + reference.length
        if end > len(buffers):
            raise msgspec.ValidationError(
                f"attachment at {reference.path} ends at byte {end}, after the frame"
            )
    for reference in header.attachments:
        buffer = buffers[reference.offset : reference.offset + reference.length]
        _place(header.message, reference.path, buffer)
    return msgspec.convert(header.message, type_, dec_hook=hook)


def carries(message: Any, nbytes: int, *, visits: int = 256) -> bool:
    """Whether ``message`` holds arrays and buffers of at least ``nbytes`` in all.

    A bounded look (at most ``visits`` values): an answer of False may miss
    buffers deep in a large message, which then merely encodes where it is.
    """
    total = 0
    pending = [message]
    while pending and visits > 0:
        visits -= 1
        node = pending.pop()
        if isinstance(node, np.ndarray):
            total += node.nbytes
        elif isinstance(node, _BUFFERS):
            total += memoryview(node).nbytes
        elif isinstance(node, msgspec.Struct):
            pending.extend(getattr(node, name) for name in node.__struct_fields__)
        elif isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, (list, tuple)):
            pending.extend(node[:visits])
        if total >= nbytes:
            return True
    return False


# -- negotiation ------------------------------------------------------------------


def announced(metadata: Any) -> bool:
    """Whether ``metadata`` (pairs) carries the attachments announcement."""
    return any(key == KEY and value == "1" for key, value in metadata or ())


def announce(grpc_context: Any, trailing: tuple[tuple[str, str | bytes], ...]) -> None:
    """Add the announcement to the call's trailing metadata, after what the handler set."""
    grpc_context.set_trailing_metadata((*trailing, ANNOUNCEMENT))


def negotiates(method: Any) -> bool:
    """Whether calls of ``method`` announce attachments: its request or response carries buffers."""
    return bool(method.request_codec.contents.buffers or method.response_codec.contents.buffers)
