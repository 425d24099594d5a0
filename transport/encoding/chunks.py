"""Stream large arrays and files in chunks that fit under the message limit, and put them back.

A message above :data:`~transport.DEFAULT_MAX_MESSAGE_BYTES` (4 MiB) ends
RESOURCE_EXHAUSTED, so a big array or file travels as a stream of
:class:`Chunk` messages, each well under the limit even as base64 JSON::

    class Store(Service, Protocol, name="example.v1.Store"):
        @rpc
        def Put(self, requests: Iterator[Chunk]) -> Receipt: ...

    client.call(Store.Put, array_chunks(weights))   # client side
    weights = join_array(requests)                  # server side

The first chunk carries the array's ``dtype`` and ``shape`` (empty for raw
bytes) and every chunk its byte ``offset`` and the ``total`` size, so the
receiver fills one preallocated buffer and checks that nothing is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ChunkError
from ..options import DEFAULT_MAX_MESSAGE_BYTES
from .json_codec import Message
from .ndarray import decode_ndarray, encode_ndarray

__all__ = [
    "CHUNK_BYTES",
    "Chunk",
    "array_chunks",
    "bytes_chunks",
    "file_chunks",
    "join_array",
    "join_array_async",
    "join_bytes",
    "join_bytes_async",
]

#: Default chunk size: its base64 plus the JSON around it stays under 4 MiB.
CHUNK_BYTES = (DEFAULT_MAX_MESSAGE_BYTES - 64 * 1024) * 3 // 4


class Chunk(Message):
    """One piece of a large array or byte string, at ``offset`` of ``total`` bytes."""

    data: bytes = b""
    offset: int = 0
    total: int = 0
    dtype: str = ""
    shape: list[int] = []


def _pieces(view: memoryview, chunk_bytes: int, first: dict[str, Any]) -> Iterator[Chunk]:
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    total = view.nbytes
    offset = 0
    while True:
        # bytes() here is the one copy a chunk costs: grpcio wants bytes.
        piece = bytes(view[offset : offset + chunk_bytes])
        yield Chunk(data=piece, offset=offset, total=total, **(first if offset == 0 else {}))
        offset += len(piece)
        if offset >= total:
            return


def bytes_chunks(
    data: bytes | bytearray | memoryview, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Chunk]:
    """Split ``data`` into chunks of at most ``chunk_bytes`` (one empty chunk for empty data)."""
    return _pieces(memoryview(data).cast("B"), chunk_bytes, {})


def array_chunks(array: np.ndarray[Any, Any], chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Split a numeric array into chunks; the first one carries its dtype and shape."""
    wire = encode_ndarray(array)
    if wire.get("quantization", "NONE") != "NONE":
        raise ValueError("quantized arrays are not chunked; send the array itself")
    first = {"dtype": wire["dtype"], "shape": wire["shape"]}
    return _pieces(wire["data"], chunk_bytes, first)


def file_chunks(source: str | Path | BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Read a file (a path or an open binary file) as chunks, ``chunk_bytes`` at a time."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as file:
            yield from file_chunks(file, chunk_bytes)
        return
    offset = 0
    while True:
        piece = source.read(chunk_bytes)
        if not piece and offset:
            return
        # The total is unknown until the end: 0 means "read until the stream ends".
        yield Chunk(data=piece, offset=offset)
        offset += len(piece)
        if not piece:
            return


class _Assembly:
    """One buffer filled chunk by chunk, checked against what the first chunk announced."""

    def __init__(self) -> None:
        self.buffer: bytearray | None = None
        self.parts: list[bytes] = []
        self.filled = 0
        self.total = 0
        self.dtype = ""
        self.shape: list[int] = []
        self.count = 0

    def add(self, chunk: Chunk) -> None:
        if self.count == 0:
            self.total, self.dtype, self.shape = chunk.total, chunk.dtype, list(chunk.shape)
            if self.total < 0:
                raise ChunkError(f"a total of {self.total} bytes")
            if self.total:
                # Grown as chunks arrive, never to an announced size: a peer's
                # word is not an allocation.
                self.buffer = bytearray()
        elif chunk.dtype or chunk.shape:
            raise ChunkError("only the first chunk may carry a dtype and shape")
        self.count += 1
        if chunk.offset != self.filled:
            raise ChunkError(f"chunk at offset {chunk.offset}, expected {self.filled}")
        end = self.filled + len(chunk.data)
        if self.buffer is None:
            if chunk.total:
                raise ChunkError("only the first chunk announces the total")
            self.parts.append(chunk.data)
        else:
            if chunk.total != self.total or end > self.total:
                raise ChunkError(f"chunks overrun the announced {self.total} bytes")
            self.buffer += chunk.data
        self.filled = end

    def data(self) -> bytes | bytearray:
        if self.count == 0:
            raise ChunkError("no chunks arrived")
        if self.buffer is None:
            return b"".join(self.parts)
        if self.filled != self.total:
            raise ChunkError(f"chunks stop at byte {self.filled} of {self.total}")
        return self.buffer

    def array(self) -> np.ndarray[Any, Any]:
        data = self.data()
        if not self.dtype:
            raise ChunkError("the first chunk names no dtype: these are bytes, not an array")
        try:
            return decode_ndarray(
                {"dtype": self.dtype, "shape": self.shape, "data": memoryview(data)}
            )
        except ValueError as exc:
            raise ChunkError(f"the chunks do not make an array: {exc}") from None


def join_bytes(chunks: Iterable[Chunk]) -> bytes | bytearray:
    """Reassemble chunks into the bytes they were cut from."""
    assembly = _Assembly()
    for chunk in chunks:
        assembly.add(chunk)
    return assembly.data()


def join_array(chunks: Iterable[Chunk]) -> np.ndarray[Any, Any]:
    """Reassemble chunks from :func:`array_chunks` into a writable array."""
    assembly = _Assembly()
    for chunk in chunks:
        assembly.add(chunk)
    return assembly.array()


async def join_bytes_async(chunks: AsyncIterable[Chunk]) -> bytes | bytearray:
    """:func:`join_bytes` for an async stream of chunks."""
    assembly = _Assembly()
    async for chunk in chunks:
        assembly.add(chunk)
    return assembly.data()


async def join_array_async(chunks: AsyncIterable[Chunk]) -> np.ndarray[Any, Any]:
    """:func:`join_array` for an async stream of chunks."""
    assembly = _Assembly()
    async for chunk in chunks:
        assembly.add(chunk)
    return assembly.array()
