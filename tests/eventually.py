"""Wait for a state with a bound: the one polling helper of the tests (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio


def eventually(condition: Callable[[], object], what: str, bound: float = 10.0) -> None:
    """Return once ``condition()`` is true; fail naming ``what`` after ``bound`` seconds."""
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {bound:g} s"
        time.sleep(0.005)


async def eventually_async(condition: Callable[[], object], what: str, bound: float = 10.0) -> None:
    """:func:`eventually` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {bound:g} s"
        await anyio.sleep(0.01)
