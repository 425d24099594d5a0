"""The JSON codec's container allowance, at its exact bound.

A message may hold 16,384 JSON arrays and objects plus one for every 32 bytes
of it (docs/reliability.md). The numbers are written out here, not read from
the module: a test that read them would follow a changed allowance.
"""

from __future__ import annotations

import functools

import pytest

from transport import DecodeLimitError, Message
from transport.encoding.json_codec import JsonCodec

ALLOWANCE = 16_384
BYTES_PER_CONTAINER = 32


class Lists(Message):
    """Empty lists in a list, and a string to set the document's length."""

    items: list[list[int]] = []
    pad: str = ""
    value: list[str] = []


CODEC = JsonCodec(Lists)


def _document(lists: int, pad: int) -> bytes:
    """``{"items":[[],...],"pad":"xx"}``: ``lists + 2`` containers (with the object, the list)."""
    return b'{"items":[' + b",".join([b"[]"] * lists) + b'],"pad":"' + b"x" * pad + b'"}'


@functools.cache
def _at_the_bound() -> tuple[bytes, bytes]:
    """A document holding exactly its allowance, and one of the same length holding one more."""
    lists = ALLOWANCE
    while True:
        shortest = len(_document(lists, 3))
        # The allowance for the length that lands exactly on lists + 2 containers.
        extra = lists + 2 - ALLOWANCE  # containers above the fixed part: one per 32 bytes
        length = extra * BYTES_PER_CONTAINER
        if length >= shortest:
            at = _document(lists, length - shortest + 3)
            over = _document(lists + 1, length - shortest)  # "[]," is three bytes more
            assert len(at) == len(over) == length
            return at, over
        lists += 1


def test_a_message_holding_exactly_its_container_allowance_decodes() -> None:
    at, _ = _at_the_bound()
    containers = at.count(b"[") + at.count(b"{")
    assert containers == ALLOWANCE + len(at) // BYTES_PER_CONTAINER
    assert len(CODEC.decode(at).items) == containers - 2


def test_one_container_past_the_allowance_is_refused_naming_the_bound() -> None:
    _, over = _at_the_bound()
    allowed = ALLOWANCE + len(over) // BYTES_PER_CONTAINER
    with pytest.raises(DecodeLimitError) as refused:
        CODEC.decode(over)
    assert str(refused.value) == (
        f"{allowed + 1} JSON arrays and objects in {len(over)} bytes: at most {allowed} "
        f"({ALLOWANCE} and one per {BYTES_PER_CONTAINER} bytes)"
    )


def test_brackets_inside_strings_do_not_count() -> None:
    at, _ = _at_the_bound()
    assert b"x" * 8 in at
    # The same length, with many brackets in the string instead of the padding.
    quoted = at.replace(b"xxxxxxxx", b"[[{{]]}}", 1)
    assert len(CODEC.decode(quoted).items) == len(CODEC.decode(at).items)


def test_a_string_across_the_scans_megabyte_boundaries_stays_a_string() -> None:
    # The exact count scans a megabyte of brackets and quotes at a time, carrying
    # "inside a string" from one to the next. The first megabyte ends just after a
    # string; the second just as one opens, whose brackets, all in the third, are
    # still inside it and count for nothing.
    mib = 2**20
    first = mib - 6  # after {"value":[" : its closing quote is the first megabyte's last mark
    third = mib - 5  # after "","  : the next opening quote is the second's last
    strings = ["[" * first, "", "[" * third, "[" * 100_000]
    document = b'{"value":["' + '","'.join(strings).encode() + b'"]}'
    assert CODEC.decode(document).value == strings
