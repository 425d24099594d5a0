"""Batch frames and the queue that fills them, without sockets."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

import msgspec
import pytest

from transport.client.coalescing import FAST_RUN, AsyncWriter, coalesced, coalesced_async
from transport.encoding import batches as _batches
from transport.encoding import frames as _attachments
from transport.errors import DecodeError, DecodeLimitError

MESSAGES = [b'{"n":1}', b"{}", b'{"text":"' + b"x" * 300 + b'"}']


def test_a_batch_holds_its_messages_in_order() -> None:
    frame = _batches.pack(MESSAGES)
    assert frame[:4] == b"\xfftB1"
    assert [bytes(m) for m in _batches.unpack(frame, len(frame))] == MESSAGES
    assert _batches.is_batch(frame)
    assert _batches.flatten([frame, b"{}"]) == [*MESSAGES, b"{}"]


def test_the_lead_byte_is_no_json_protobuf_or_attachment_frame() -> None:
    lead = _batches.LEAD_BYTE
    with pytest.raises(UnicodeDecodeError):
        lead.decode()  # so no UTF-8 JSON text starts with it
    assert _batches.LEAD & 0b111 == 7  # a protobuf tag of wire type 7, which does not exist
    assert lead != _attachments.MAGIC[:1]
    assert not _batches.is_batch(msgspec.json.encode({"a": 1}))
    assert not _batches.is_batch(b"")


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"\xfftB1", "truncated"),
        (b"\xfftX1" + struct.pack("<II", 1, 0), "truncated"),
        (b"\xfftB1" + struct.pack("<I", 0), "cannot hold"),
        (b"\xfftB1" + struct.pack("<I", 2**32 - 1), "cannot hold"),
        (b"\xfftB1" + struct.pack("<III", 2, 3, 3) + b"abcde", "do not add up"),
        (b"\xfftB1" + struct.pack("<II", 1, 2) + b"abc", "do not add up"),
    ],
)
def test_a_malformed_batch_is_a_decode_error(frame: bytes, problem: str) -> None:
    with pytest.raises(DecodeError, match=problem):
        _batches.unpack(frame, _batches.CEILING)


#: The attack of issue 22: a request at grpcio's 4 MiB limit declaring a million
#: empty messages. Well formed (the lengths add up), it costs only what reading it costs.
ATTACK_COUNT = 1_048_320


def _empties(count: int) -> bytes:
    """A well-formed batch frame of ``count`` empty messages."""
    return _batches.MAGIC + struct.pack("<I", count) + bytes(4 * count)


def _peak(work: Callable[[], object]) -> int:
    """The bytes allocated at the peak of ``work()``, over what was allocated before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with contextlib.suppress(DecodeError):
            work()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_a_frame_larger_than_announced_is_refused_before_it_is_read() -> None:
    frame = _empties(ATTACK_COUNT)
    with pytest.raises(DecodeLimitError, match=r"of 4193288 bytes is over the 65536 bytes"):
        _batches.unpack(frame, _batches.CEILING)
    assert _peak(lambda: _batches.unpack(frame, _batches.CEILING)) < 64 * 1024
    # At the limit it is read; one byte more, refused.
    fits = _empties((_batches.CEILING - 8) // 4)
    assert len(fits) == _batches.CEILING
    assert sum(1 for _ in _batches.unpack(fits, _batches.CEILING)) == (_batches.CEILING - 8) // 4
    with pytest.raises(DecodeLimitError, match=f"{_batches.KEY}: {_batches.CEILING - 1}"):
        _batches.unpack(fits, _batches.CEILING - 1)


def test_a_count_its_size_cannot_hold_is_refused_by_the_header() -> None:
    frame = _batches.MAGIC + struct.pack("<I", 16_000) + bytes(4 * 100)
    with pytest.raises(DecodeError, match=r"16000 messages it cannot hold .* at most 100 lengths"):
        _batches.unpack(frame, _batches.CEILING)


def test_single_reads_the_count_first() -> None:
    frame = _empties(ATTACK_COUNT)
    with pytest.raises(DecodeError, match=f"of {ATTACK_COUNT} messages where one was expected"):
        _batches.single(frame)
    assert _peak(lambda: _batches.single(frame)) < 64 * 1024
    # A request alone in a batch may be as large as any request.
    large = b"x" * (4 * _batches.CEILING)
    assert bytes(_batches.single(_batches.pack([large]))) == large
    with pytest.raises(DecodeError, match="do not add up"):
        _batches.single(_batches.pack([large])[:-1])


@pytest.mark.parametrize("cut", range(4, 8))
def test_a_header_cut_short_is_a_decode_error(cut: int) -> None:
    frame = _batches.pack([b"{}"])[:cut]  # the magic, then part of the count
    with pytest.raises(DecodeError):
        _batches.single(frame)


def test_messages_are_made_as_they_are_taken() -> None:
    count = (_batches.CEILING - 8) // 4
    frame = _empties(count)
    assert _peak(lambda: _batches.unpack(frame, _batches.CEILING)) < 16 * 1024
    messages = _batches.unpack(frame, _batches.CEILING)
    assert bytes(next(messages)) == b""
    assert sum(1 for _ in messages) == count - 1
    # A malformed frame is refused whole, before its first message is handed out.
    with pytest.raises(DecodeError, match="do not add up"):
        _batches.unpack(_batches.pack(MESSAGES)[:-1], _batches.CEILING)


def test_take_packs_what_fits_and_sends_a_large_message_alone() -> None:
    queued = deque([b"a" * 10, b"b" * 10, b"c" * 10, b"d" * 100, b"e"])
    # 8 bytes of head, then 4 + 10 per message: three fit in 50 bytes.
    frame, taken = _batches.take(queued, 50)
    assert len(frame) <= 50 and taken == 30
    assert _batches.flatten([frame]) == [b"a" * 10, b"b" * 10, b"c" * 10]
    assert _batches.take(queued, 50) == (b"d" * 100, 100)  # alone, as without batches
    assert _batches.take(queued, 50) == (b"e", 1)
    assert not queued


def test_the_announced_limit_is_read_with_care() -> None:
    assert _batches.batch_limit([("x", "1"), _batches.announcement(1024)]) == 1024
    assert _batches.batch_limit([_batches.announcement(10**9)]) == _batches.CEILING
    assert _batches.batch_limit([(_batches.KEY, "-5")]) == 0
    assert _batches.batch_limit([(_batches.KEY, "9" * 40)]) == 0
    assert _batches.batch_limit([(_batches.KEY, b"1")]) == 0
    assert _batches.batch_limit(None) == 0
    assert _batches.fitting(None) == _batches.fitting(-1) == _batches.CEILING
    assert _batches.fitting(1024) == 1024


# -- the sync pump --------------------------------------------------------------------


def _written(stream: Iterator[bytes]) -> list[bytes]:
    """What ``stream`` sends to a writer that takes 50 µs a write (as grpcio takes longer)."""
    sent = []
    for data in stream:
        sent.append(data)
        _write_time()
    return sent


def _write_time() -> None:
    until = time.perf_counter() + 50e-6
    while time.perf_counter() < until:
        pass


def test_what_is_queued_goes_together_and_in_order() -> None:
    source = (f'{{"n":{n}}}'.encode() for n in range(10_000))
    sent = _written(coalesced(source, 1024))
    assert _batches.flatten(sent) == [f'{{"n":{n}}}'.encode() for n in range(10_000)]
    assert len(sent) < 1_000  # a fast producer fills batches
    assert all(len(data) <= 1024 for data in sent)


def test_a_trickle_goes_one_message_at_a_time() -> None:
    """The producer makes the next message only once the last one was taken: no batch forms."""
    taken = threading.Semaphore(0)

    def source() -> Iterator[bytes]:
        for n in range(20):
            yield str(n).encode()
            assert taken.acquire(timeout=10)

    sent = []
    for data in coalesced(source(), 1024):
        sent.append(data)
        taken.release()
    assert sent == [str(n).encode() for n in range(20)]


def test_an_error_comes_after_the_messages_before_it() -> None:
    def source() -> Iterator[bytes]:
        yield from (b"1", b"2", b"3")
        raise ValueError("boom")

    sent = []
    with pytest.raises(ValueError, match="boom"):
        for data in coalesced(source(), 1024):
            sent.append(data)
    assert _batches.flatten(sent) == [b"1", b"2", b"3"]


def test_the_producer_waits_once_a_batch_is_queued() -> None:
    produced = []
    too_many = threading.Event()

    def source() -> Iterator[bytes]:
        for n in range(1000):
            produced.append(n)
            if len(produced) > 40:  # inline ones, a batch sent, a batch queued: about 26
                too_many.set()
            yield b"x" * 10

    stream = coalesced(source(), 100)
    for _ in range(FAST_RUN + 1):
        next(stream)
        _write_time()
    assert not too_many.wait(timeout=0.3)  # the producer waits for room
    assert len(_batches.flatten(stream)) + FAST_RUN + 1 <= 1000


def test_a_stream_slower_than_its_writes_stays_inline() -> None:
    threads = threading.active_count()

    def source() -> Iterator[bytes]:
        for n in range(20):
            _write_time()  # made slower than the writer below takes
            _write_time()
            assert threading.active_count() == threads
            yield str(n).encode()

    assert list(coalesced(source(), 1024)) == [str(n).encode() for n in range(20)]


def test_leaving_early_closes_the_source() -> None:
    closed = threading.Event()

    def source() -> Iterator[bytes]:
        try:
            while True:
                yield b"x"
        finally:
            closed.set()

    stream = coalesced(source(), 64)
    next(stream)
    next(stream)
    stream.close()
    assert closed.wait(timeout=10)


def test_an_empty_source_sends_nothing() -> None:
    assert list(coalesced(iter([]), 64)) == []


# -- the asyncio pump -------------------------------------------------------------------


@pytest.mark.anyio
async def test_asyncio_batches_what_is_queued_in_order_then_the_error() -> None:
    async def source() -> AsyncIterator[bytes]:
        for n in range(5_000):
            yield str(n).encode()
        raise ValueError("boom")

    sent = []
    with pytest.raises(ValueError, match="boom"):
        async for data in coalesced_async(source(), 512):
            sent.append(data)
            _write_time()
    assert _batches.flatten(sent) == [str(n).encode() for n in range(5_000)]
    assert len(sent) < 500 and all(len(data) <= 512 for data in sent)


@pytest.mark.anyio
async def test_asyncio_trickle_goes_one_message_at_a_time() -> None:
    taken = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        for n in range(20):
            yield str(n).encode()
            await asyncio.wait_for(taken.wait(), 10)
            taken.clear()

    sent = []
    async for data in coalesced_async(source(), 1024):
        sent.append(data)
        taken.set()
    assert sent == [str(n).encode() for n in range(20)]


@pytest.mark.anyio
async def test_asyncio_leaving_early_cancels_the_producer() -> None:
    closed = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
                await asyncio.sleep(0)
        finally:
            closed.set()

    stream = coalesced_async(source(), 64)
    await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(closed.wait(), 10)


@pytest.mark.anyio
async def test_asyncio_writes_batch_once_fast_and_a_failed_send_is_raised() -> None:
    sent: list[bytes] = []
    ended = False

    async def send(data: bytes) -> None:
        await asyncio.sleep(0)
        _write_time()  # a send takes longer than the application's writes
        if ended:
            raise ConnectionError("the call ended")
        sent.append(data)

    writer = AsyncWriter(send, 64)
    for n in range(FAST_RUN):
        await writer.write(str(n).encode())
    assert sent == [str(n).encode() for n in range(FAST_RUN)]  # inline so far
    for n in range(FAST_RUN, 200):
        await writer.write(str(n).encode())
    await writer.drain()
    assert _batches.flatten(sent) == [str(n).encode() for n in range(200)]
    assert len(sent) < 200
    ended = True
    with pytest.raises(ConnectionError):
        for _ in range(10_000):
            await writer.write(b"x" * 10)
        await writer.drain()
