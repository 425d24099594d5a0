from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

import grpc
import msgspec
import numpy as np
import pytest

from transport import AsyncContext, Context, Message, Service, bind, rpc
from transport.encoding import frames as attachments
from transport.encoding.json_codec import JsonCodec as JsonCodecOf
from transport.encoding.json_codec import _dec_hook, _enc_hook
from transport.testing import serve, serve_async


class Blob(Message):
    name: str
    data: bytes = b""


class Tensor(Message):
    name: str
    array: np.ndarray
    blob: bytes = b""
    children: list[Tensor] = []


class Plain(Message):
    name: str
    tags: dict[str, int] = {}


def _tree() -> Tensor:
    return Tensor(
        name="root",
        array=np.arange(2048, dtype=np.float32).reshape(32, 64),
        blob=b"\x01" * 5000,
        children=[
            Tensor(name="small", array=np.arange(3, dtype=np.int16), blob=b"tiny"),
            Tensor(name="big", array=np.ones(1000, dtype=np.complex128)),
        ],
    )


def test_contents_finds_arrays_and_buffers_at_any_depth() -> None:
    assert attachments.contents(Tensor) == attachments.Contents(arrays=True, buffers=True)
    assert attachments.contents(Blob) == attachments.Contents(arrays=False, buffers=True)
    assert attachments.contents(Plain) == attachments.Contents(arrays=False, buffers=False)
    assert attachments.contents(list[Blob]).buffers


def test_spliced_json_is_the_same_json() -> None:
    message = _tree()
    assert attachments.encode_spliced(message, _enc_hook) == msgspec.json.encode(
        message, enc_hook=_enc_hook
    )


def test_frame_round_trip_keeps_every_field() -> None:
    message = _tree()
    frame = attachments.encode_framed(message, _enc_hook)
    assert frame.startswith(attachments.MAGIC)
    back = attachments.decode_framed(frame, Tensor, _dec_hook)
    assert back.name == "root" and back.blob == message.blob
    assert np.array_equal(back.array, message.array) and back.array.shape == (32, 64)
    assert [c.name for c in back.children] == ["small", "big"]
    assert np.array_equal(back.children[0].array, message.children[0].array)
    assert back.children[0].blob == b"tiny"
    assert np.array_equal(back.children[1].array, message.children[1].array)


def test_received_arrays_are_aligned_views_of_the_frame() -> None:
    frame = attachments.encode_framed(_tree(), _enc_hook)
    back = attachments.decode_framed(frame, Tensor, _dec_hook)
    whole = np.frombuffer(frame, dtype=np.uint8)
    for array in (back.array, back.children[1].array):
        assert np.shares_memory(array, whole)
        assert array.flags.aligned and not array.flags.writeable


def test_a_message_without_large_buffers_stays_plain_json() -> None:
    message = Blob(name="b", data=b"short")
    frame = attachments.encode_framed(message, _enc_hook)
    assert frame == msgspec.json.encode(message)


def _frame(header: dict[str, Any], body: bytes = b"") -> bytes:
    encoded = msgspec.json.encode(header)
    start = 8 + len(encoded)
    pad = bytes(-start % 16)
    return attachments.MAGIC + len(encoded).to_bytes(4, "little") + encoded + pad + body


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (attachments.MAGIC + b"\x01", "truncated"),
        (attachments.MAGIC + (1000).to_bytes(4, "little") + b"{}", "truncated"),
        (
            _frame(
                {
                    "message": {"name": "x", "data": None},
                    "attachments": [{"path": ["data"], "offset": 0, "length": 64}],
                },
                b"x" * 16,
            ),
            "after the frame",
        ),
        (
            _frame(
                {
                    "message": {"name": "x"},
                    "attachments": [{"path": ["data"], "offset": 0, "length": 4}],
                },
                b"x" * 16,
            ),
            "not in the message",
        ),
        (
            _frame(
                {
                    "message": {"name": "x"},
                    "attachments": [{"path": ["name"], "offset": 0, "length": 4}],
                },
                b"x" * 16,
            ),
            "does not point at a null",
        ),
        (
            _frame(
                {
                    "message": {"name": "x", "data": None},
                    "attachments": [{"path": ["data"], "offset": -1, "length": 4}],
                },
                b"x" * 16,
            ),
            "Expected `int` >= 0",
        ),
    ],
)
def test_malformed_frames_are_validation_errors(frame: bytes, error: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=error):
        attachments.decode_framed(frame, Blob, _dec_hook)


def test_a_well_formed_frame_by_hand() -> None:
    frame = _frame(
        {
            "message": {"name": "x", "data": None},
            "attachments": [{"path": ["data"], "offset": 0, "length": 5}],
        },
        b"hello" + bytes(11),
    )
    assert attachments.decode_framed(frame, Blob, _dec_hook) == Blob(name="x", data=b"hello")


def test_announcement() -> None:
    assert attachments.announced([("a", "b"), attachments.ANNOUNCEMENT])
    assert not attachments.announced([("transport-attachments", "2")])
    assert not attachments.announced(None)


# -- negotiation end to end ---------------------------------------------------------


class Arrays(Service, Protocol, name="test.v1.Arrays"):
    @rpc
    def Echo(self, request: Tensor) -> Tensor: ...

    @rpc
    def Split(self, request: Tensor) -> Iterator[Blob]: ...


class SyncArrays:
    def Echo(self, request: Tensor, context: Context) -> Tensor:
        context.set_trailing_metadata([("x-seen", str(request.array.nbytes))])
        return Tensor(name=request.name, array=request.array * 2, blob=request.blob)

    def Split(self, request: Tensor, context: Context) -> Iterator[Blob]:
        for index, row in enumerate(request.array):
            yield Blob(name=str(index), data=row.tobytes())


class AsyncArrays:
    async def Echo(self, request: Tensor, context: AsyncContext) -> Tensor:
        return Tensor(name=request.name, array=request.array * 2, blob=request.blob)

    async def Split(self, request: Tensor, context: AsyncContext) -> AsyncIterator[Blob]:
        for index, row in enumerate(request.array):
            yield Blob(name=str(index), data=row.tobytes())


def _big() -> Tensor:
    return Tensor(
        name="t", array=np.arange(4096, dtype=np.float32).reshape(8, 512), blob=b"b" * 4096
    )


def test_typed_ends_switch_to_frames_after_the_first_answer() -> None:
    with serve(bind(Arrays, SyncArrays())) as server:
        client = server.client
        assert not client._peer_reads_frames
        first, info = client.with_call(Arrays.Echo, _big())
        assert dict(info.trailing_metadata)["x-seen"] == "16384"
        assert "transport-attachments" not in dict(info.trailing_metadata)  # the library's own
        assert client._peer_reads_frames
        second = client.call(Arrays.Echo, _big())
        for reply in (first, second):
            assert np.array_equal(reply.array, _big().array * 2) and reply.blob == _big().blob
        rows = list(client.call(Arrays.Split, _big()))
        assert [np.frombuffer(r.data, np.float32)[0] for r in rows] == [512.0 * i for i in range(8)]


def test_a_json_peer_never_sees_a_frame() -> None:
    wire = JsonCodecOf(Tensor).encode(_big())
    with serve(bind(Arrays, SyncArrays())) as server:
        raw: Any = server.client.channel.unary_unary("/test.v1.Arrays/Echo")
        data, call = raw.with_call(wire)
        assert data.startswith(b"{") and "transport-attachments" not in dict(
            call.trailing_metadata()
        )
        announcing, call = raw.with_call(wire, metadata=[attachments.ANNOUNCEMENT])
        assert announcing.startswith(attachments.MAGIC)
        plain = server.connect(attachments=False)
        plain.call(Arrays.Echo, _big())
        assert not plain._peer_reads_frames
        plain.close()


def test_a_broken_frame_is_invalid_argument_and_the_server_keeps_serving() -> None:
    frame = attachments.encode_framed(_big(), _enc_hook)
    with serve(bind(Arrays, SyncArrays())) as server:
        raw: Any = server.client.channel.unary_unary("/test.v1.Arrays/Echo")
        announcing = [attachments.ANNOUNCEMENT]
        with pytest.raises(grpc.RpcError) as caught:
            raw(frame[:-100], metadata=announcing)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "after the frame" in str(caught.value.details())
        assert raw(frame, metadata=announcing).startswith(attachments.MAGIC)
        assert server.client.call(Arrays.Echo, _big()).name == "t"


def test_a_frame_from_a_client_that_never_announced_frames_is_refused() -> None:
    frame = attachments.encode_framed(_big(), _enc_hook)
    with serve(bind(Arrays, SyncArrays())) as server:
        raw: Any = server.client.channel.unary_unary("/test.v1.Arrays/Echo")
        with pytest.raises(grpc.RpcError) as caught:
            raw(frame)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "frames were not negotiated" in str(caught.value.details())


@pytest.mark.anyio
async def test_asyncio_ends_switch_to_frames_too() -> None:
    async with serve_async(bind(Arrays, AsyncArrays())) as server:
        client = server.client
        first = await client.call(Arrays.Echo, _big())
        assert client._peer_reads_frames
        second, info = await client.with_call(Arrays.Echo, _big())
        assert "transport-attachments" not in dict(info.trailing_metadata)
        for reply in (first, second):
            assert np.array_equal(reply.array, _big().array * 2)
        rows = [row async for row in client.call(Arrays.Split, _big())]
        assert len(rows) == 8 and rows[1].data == _big().array[1].tobytes()


def test_a_stream_that_ends_teaches_the_client_too() -> None:
    with serve(bind(Arrays, SyncArrays())) as server:
        client = server.connect()
        rows = list(client.call(Arrays.Split, _big()))
        assert len(rows) == 8 and client._peer_reads_frames
        client.close()


@pytest.mark.anyio
async def test_an_asyncio_stream_that_ends_teaches_the_client_too() -> None:
    async with serve_async(bind(Arrays, AsyncArrays())) as server:
        client = server.connect()
        rows = [row async for row in client.call(Arrays.Split, _big())]
        assert len(rows) == 8 and client._peer_reads_frames
        await client.close()


class MetadataSeer:
    """Echoes, remembering the metadata its handler was shown."""

    def __init__(self) -> None:
        self.seen: tuple[tuple[str, str | bytes], ...] = ()

    def Echo(self, request: Tensor, context: Context) -> Tensor:
        self.seen = context.invocation_metadata()
        return request

    def Split(self, request: Tensor, context: Context) -> Iterator[Blob]:
        yield Blob(name=request.name)


def test_the_negotiation_stays_out_of_the_users_metadata() -> None:
    seer = MetadataSeer()
    with serve(bind(Arrays, seer)) as server:
        tensor = Tensor(name="t", array=np.arange(3.0))
        for _ in range(2):  # the second call is framed: the client has learned
            _, info = server.client.with_call(Arrays.Echo, tensor, metadata=[("x-mine", "1")])
            assert info.trailing_metadata == ()
            assert [key for key, _ in seer.seen if key.startswith("transport-")] == []
            assert ("x-mine", "1") in seer.seen
        stream = server.client.call(Arrays.Split, tensor)
        assert [blob.name for blob in stream] == ["t"]
        assert stream.trailing_metadata() == ()
