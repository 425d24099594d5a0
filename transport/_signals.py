"""Wait for SIGINT or SIGTERM in a program that serves on threads, and never miss one.

The kernel hands a signal sent to a process to any of its threads that does
not block it. grpc core's threads do not, so SIGTERM often lands on one of
them. Python then runs its handler only when the main thread next runs
Python code, and a main thread asleep in ``threading.Event.wait()`` does not
wake for a signal given to another thread: the server would serve on, deaf
to the signal, until something else woke it. ``signal.set_wakeup_fd`` is
written from whichever thread takes the signal, so :class:`StopSignals`
sleeps on that instead, as asyncio's own signal handling does.

Every platform has SIGINT (Ctrl-C) and SIGTERM, though only POSIX lets one
process send SIGTERM to another (Windows' ``terminate()`` ends the process
at once); Windows' Ctrl-Break (SIGBREAK) stops as they do. A server started
on an asyncio loop uses :func:`add_stop_handlers`, which works on loops that
cannot take signal handlers (Windows' proactor loop) too.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["STOPPING", "StopSignals", "add_stop_handlers"]

#: The signals that stop a server gracefully, those this platform has.
STOPPING = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name)
)
# The bytes that end wait(): what set() sends, and the signals' numbers.
_WAKERS = frozenset({0, *STOPPING})

_Handler = Callable[[int, FrameType | None], Any] | int | None


def add_stop_handlers(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    """Call ``stop`` in ``loop`` when one of :data:`STOPPING` comes; from the main thread.

    asyncio's own handlers where the loop takes them (POSIX); elsewhere plain
    handlers that pass the call to the loop, which wakes for them. Those stay
    set after the loop closes: call it once, for the loop that serves until exit.
    """
    for signum in STOPPING:
        try:
            loop.add_signal_handler(signum, stop)
        except NotImplementedError:  # Windows' proactor loop
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop))


class StopSignals:
    """SIGINT, SIGTERM (and Windows' SIGBREAK) or :meth:`set` from any thread end :meth:`wait`.

    Enter it in the main thread, where signal handlers are set::

        with StopSignals() as stop:
            server.start()
            stop.wait()
        server.stop(grace)

    On leaving, the signals' previous handlers come back.
    """

    def __init__(self) -> None:
        self._receive, self._send = socket.socketpair()
        self._send.setblocking(False)  # set_wakeup_fd needs it; a full buffer has woken us
        self._stopped = threading.Event()
        self._handlers: dict[int, _Handler] = {}
        self._wakeup = -1

    def __enter__(self) -> StopSignals:
        self._wakeup = signal.set_wakeup_fd(self._send.fileno(), warn_on_full_buffer=False)
        for signum in STOPPING:
            self._handlers[signum] = signal.signal(signum, lambda *_: self.set())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._wakeup)
        self._receive.close()
        self._send.close()

    def set(self) -> None:
        """End :meth:`wait`, as a signal would."""
        self._stopped.set()
        with contextlib.suppress(OSError):  # a full buffer: wait() is woken already
            self._send.send(b"\0")

    def is_set(self) -> bool:
        """Whether a signal came or :meth:`set` was called."""
        return self._stopped.is_set()

    def wait(self) -> None:
        """Sleep until a signal comes (to whichever thread) or :meth:`set` is called."""
        while not self._stopped.is_set():
            # A byte for every signal that has a Python handler, whichever
            # thread took it: its number (0 from set()).
            if _WAKERS.intersection(self._receive.recv(64)):
                self._stopped.set()
