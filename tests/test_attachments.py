from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

from transport import Message
from transport import _attachments as attachments
from transport.codec import _dec_hook, _enc_hook


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
