"""JSON nesting is refused past 1,000 levels exactly, also under a raised recursion limit.

msgspec stops at the interpreter's recursion check; a program that raises the
limit would let a deep document overflow the C stack, so the codec then
measures the depth first (docs/reliability.md, "Nesting").
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from transport import DecodeError, Message
from transport.encoding.json_codec import JsonCodec

MAX_DEPTH = 1_000


class Deep(Message):
    """Any JSON under one key: the object is one level, the value the others."""

    value: Any = None


CODEC = JsonCodec(Deep)


def _nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    """``{"value": [[...]]}`` nested ``depth`` levels in all (the object included)."""
    inner = depth - 1
    return b'{"value":' + open_ * inner + close * inner + b"}"


@pytest.fixture
def raised_limit() -> Iterator[None]:
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.usefixtures("raised_limit")
def test_under_a_raised_recursion_limit_1000_levels_decode_and_1001_do_not() -> None:
    assert CODEC.decode(_nested(MAX_DEPTH)).value is not None
    # More brackets than levels, so that the depth is measured, not only counted.
    wide = _nested(MAX_DEPTH).replace(b"{", b'{"ignored":[],', 1)
    assert CODEC.decode(wide).value is not None
    with pytest.raises(DecodeError, match="JSON is nested too deeply"):
        CODEC.decode(_nested(MAX_DEPTH + 1))


@pytest.mark.usefixtures("raised_limit")
def test_objects_count_as_levels_too() -> None:
    objects = b'{"value":' + b'{"a":' * (MAX_DEPTH - 1) + b"1" + b"}" * MAX_DEPTH
    assert CODEC.decode(objects).value is not None
    deeper = b'{"value":' + b'{"a":' * MAX_DEPTH + b"1" + b"}" * (MAX_DEPTH + 1)
    with pytest.raises(DecodeError, match="JSON is nested too deeply"):
        CODEC.decode(deeper)


@pytest.mark.usefixtures("raised_limit")
def test_brackets_in_strings_are_not_levels() -> None:
    quoted = b'{"value":"' + b"[" * 5_000 + b'"}'
    assert CODEC.decode(quoted).value == "[" * 5_000


def test_at_the_default_limit_a_deep_document_is_refused_too() -> None:
    with pytest.raises(DecodeError):
        CODEC.decode(_nested(100_000))
