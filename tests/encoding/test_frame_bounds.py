"""``carries``: whether a message holds enough array bytes to go as a frame, in a bounded look.

It looks at no more than ``visits`` values (the message itself counts), so a
huge message costs a bounded walk; it answers False when the look ends short.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

from transport import Message
from transport.encoding.frames import MAGIC, carries, decode_framed
from transport.encoding.json_codec import _dec_hook


class Holder(Message):
    """Arrays and plain values, to look through."""

    arrays: list[np.ndarray] = []
    text: str = ""


ARRAYS = [np.zeros(10, np.uint8) for _ in range(3)]


def test_it_counts_array_bytes_up_to_the_threshold() -> None:
    assert carries(ARRAYS, 30)
    assert not carries(ARRAYS, 31)
    assert carries(Holder(arrays=ARRAYS), 30)
    assert carries({"a": ARRAYS[0], "b": b"x" * 20}, 30)


def test_a_message_without_enough_buffers_is_not_carried() -> None:
    assert not carries(Holder(text="x" * 1000), 1)
    assert not carries([], 1)
    assert not carries({"a": 1, "b": [2, 3]}, 1)


def test_it_looks_at_exactly_visits_values() -> None:
    # The list, then its three arrays: four values.
    assert carries(ARRAYS, 30, visits=4)
    assert not carries(ARRAYS, 30, visits=3)
    assert not carries(ARRAYS, 10, visits=1)  # the list alone
    assert carries(ARRAYS, 10, visits=2)
    # A dict's values are not cut to the visits left, as a list's are: the count alone stops.
    named = dict(zip("abc", ARRAYS, strict=True))
    assert carries(named, 30, visits=4)
    assert not carries(named, 30, visits=3)


class Blobs(Message):
    """A list of byte strings, each of which a frame may carry."""

    parts: list[bytes | None] = []


def _frame(header: dict[str, Any], body: bytes) -> bytes:
    encoded = msgspec.json.encode(header)
    pad = bytes(-(8 + len(encoded)) % 16)
    return MAGIC + len(encoded).to_bytes(4, "little") + encoded + pad + body


@pytest.mark.parametrize(("index", "placed"), [(0, True), (1, False), (-1, False)])
def test_a_buffer_is_placed_only_at_an_index_the_list_has(index: int, placed: bool) -> None:
    header = {
        "message": {"parts": [None]},
        "attachments": [{"path": ["parts", index], "offset": 0, "length": 5}],
    }
    frame = _frame(header, b"hello" + bytes(11))
    if placed:
        assert decode_framed(frame, Blobs, _dec_hook) == Blobs(parts=[b"hello"])
        return
    with pytest.raises(msgspec.ValidationError, match=r"attachment path .* is not in the message"):
        decode_framed(frame, Blobs, _dec_hook)
