"""Counting the calls a server is handling right now, and waiting for a count."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CallsInFlight:
    """How many calls are in progress; a waiter blocks until the count is a given value.

    A handler wraps its work in :meth:`track`, so the count drops however the
    call ends: returned, failed, or cancelled by the client.
    """

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    @property
    def count(self) -> int:
        """The number of calls in progress."""
        with self._changed:
            return self._count

    @contextmanager
    def track(self) -> Iterator[None]:
        """Count one call for the duration of the ``with`` block."""
        with self._changed:
            self._count += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._count -= 1
                self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until ``count`` calls are in progress or ``timeout`` passes; True if reached."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == count, timeout)
