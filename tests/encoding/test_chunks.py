from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import pytest

from transport import (
    DEFAULT_MAX_MESSAGE_BYTES,
    AsyncContext,
    ChunkError,
    Context,
    JsonCodec,
    Message,
    Service,
    bind,
    rpc,
)
from transport.encoding.chunks import (
    CHUNK_BYTES,
    Chunk,
    array_chunks,
    bytes_chunks,
    file_chunks,
    join_array,
    join_array_async,
    join_bytes,
    join_bytes_async,
)
from transport.testing import serve, serve_async


class Receipt(Message):
    size: int = 0
    checksum: float = 0.0


class Store(Service, Protocol, name="test.v1.Store"):
    @rpc
    def Put(self, requests: Iterator[Chunk]) -> Receipt: ...

    @rpc
    def Mirror(self, requests: Iterator[Chunk]) -> Iterator[Chunk]: ...


class SyncStore:
    def Put(self, requests: Iterator[Chunk], context: Context) -> Receipt:
        array = join_array(requests)
        return Receipt(size=array.nbytes, checksum=float(array.sum()))

    def Mirror(self, requests: Iterator[Chunk], context: Context) -> Iterator[Chunk]:
        yield from array_chunks(join_array(requests) * 2)


class AsyncStore:
    async def Put(self, requests: AsyncIterator[Chunk], context: AsyncContext) -> Receipt:
        data = await join_bytes_async(requests)
        return Receipt(size=len(data))

    async def Mirror(
        self, requests: AsyncIterator[Chunk], context: AsyncContext
    ) -> AsyncIterator[Chunk]:
        for chunk in array_chunks(await join_array_async(requests)):
            yield chunk


def test_every_chunk_fits_under_the_default_limit_even_as_base64_json() -> None:
    codec = JsonCodec(Chunk)
    biggest = max(
        len(codec.encode(chunk)) for chunk in array_chunks(np.ones(CHUNK_BYTES // 2, np.float64))
    )
    assert CHUNK_BYTES < biggest < DEFAULT_MAX_MESSAGE_BYTES


@pytest.mark.parametrize("dtype", ["float32", "int16", "complex128", "bool"])
def test_arrays_come_back_whole(dtype: str) -> None:
    array = (np.arange(30_000) % 7).astype(dtype).reshape(100, 300)
    chunks = list(array_chunks(array, chunk_bytes=10_000))
    assert len(chunks) == -(-array.nbytes // 10_000)
    assert chunks[0].dtype == dtype and chunks[0].shape == [100, 300]
    assert all(not c.dtype and not c.shape for c in chunks[1:])
    back = join_array(chunks)
    assert back.dtype == array.dtype and np.array_equal(back, array) and back.flags.writeable


def test_bytes_and_files_come_back_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    assert join_bytes(bytes_chunks(data, chunk_bytes=999)) == data
    assert join_bytes(bytes_chunks(b"")) == b""
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert join_bytes(file_chunks(path, chunk_bytes=4096)) == data
    assert join_bytes(file_chunks(io.BytesIO(b""))) == b""
    assert [c.data for c in file_chunks(io.BytesIO(b"abc"), chunk_bytes=2)] == [b"ab", b"c"]


def test_missing_reordered_or_extra_chunks_are_refused() -> None:
    chunks = list(bytes_chunks(b"x" * 100, chunk_bytes=30))
    with pytest.raises(ChunkError, match="stop at byte 90 of 100"):
        join_bytes(chunks[:-1])
    with pytest.raises(ChunkError, match="offset 60, expected 30"):
        join_bytes([chunks[0], chunks[2]])
    with pytest.raises(ChunkError, match="overrun"):
        join_bytes([*chunks[:-1], Chunk(data=b"y" * 30, offset=90, total=100)])
    with pytest.raises(ChunkError, match="no chunks"):
        join_bytes([])
    with pytest.raises(ChunkError, match="not an array"):
        join_array(chunks)
    with pytest.raises(ValueError, match="positive"):
        list(bytes_chunks(b"x", chunk_bytes=0))


def test_a_large_array_streams_both_ways_under_the_default_limit() -> None:
    array = np.random.default_rng(1).random((1200, 1000))  # 9.6 MB, over 2x the limit
    with serve(bind(Store, SyncStore())) as server:
        receipt = server.client.call(Store.Put, array_chunks(array))
        assert receipt.size == array.nbytes and receipt.checksum == pytest.approx(array.sum())
        back = join_array(server.client.call(Store.Mirror, array_chunks(array)))
        assert np.array_equal(back, array * 2)


@pytest.mark.anyio
async def test_chunks_over_asyncio() -> None:
    array = np.arange(1_500_000, dtype=np.float32)  # 6 MB
    async with serve_async(bind(Store, AsyncStore())) as server:
        receipt = await server.client.call(Store.Put, bytes_chunks(array.tobytes()))
        assert receipt.size == array.nbytes
        back = await join_array_async(server.client.call(Store.Mirror, array_chunks(array)))
        assert np.array_equal(back, array)
