"""``carries``: whether a message holds enough array bytes to go as a frame, in a bounded look.

It looks at no more than ``visits`` values (the message itself counts), so a
huge message costs a bounded walk; it answers False when the look ends short.
"""

from __future__ import annotations

import numpy as np

from transport import Message
from transport.encoding.frames import carries


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
