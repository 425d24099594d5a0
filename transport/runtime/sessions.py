"""The session table of one owner: limits, idle expiry, exactly-once close.

Plain state code (no grpc, no I/O): the table decides *which* backend sessions
must be closed and hands each one out exactly once; the server awaits their
``close()``. A session in use by a call is never handed out for closing: a close
requested meanwhile (CloseSession, shutdown, a lost lease) removes the handle at
once and the last call to finish hands the session out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from ..errors import RpcError
from ..status import StatusCode
from .handles import UnknownHandleError

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_SESSIONS",
    "SessionEntry",
    "SessionTable",
    "TooManySessionsError",
]

#: Open sessions an owner serves at once unless configured otherwise.
DEFAULT_MAX_SESSIONS = 64
#: Seconds a session may stay unused before the owner closes it.
DEFAULT_IDLE_TIMEOUT = 300.0

S = TypeVar("S")


class TooManySessionsError(RpcError):
    """Raised when opening one more session would pass the limit: RESOURCE_EXHAUSTED."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            StatusCode.RESOURCE_EXHAUSTED,
            f"too many open sessions (the limit is {limit}); close one first",
            {"maxSessions": limit},
        )


class SessionEntry(Generic[S]):
    """One open session: its handle, the backend session and its use."""

    __slots__ = ("closing", "handle", "last_used", "session", "users")

    def __init__(self, handle: str, session: S, now: float) -> None:
        self.handle = handle
        self.session = session
        self.last_used = now
        self.users = 0
        self.closing = False


class SessionTable(Generic[S]):
    """Open sessions by handle, with a maximum count and an idle timeout.

    Every method that removes sessions returns those the caller must now close;
    together they return each session exactly once.
    """

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._entries: dict[str, SessionEntry[S]] = {}
        self._reserved = 0
        # Calls may come from the event loop and from worker threads.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The number of open sessions (being opened not included)."""
        return len(self._entries)

    def reserve(self) -> None:
        """Claim room for a session about to be opened, or raise :class:`TooManySessionsError`."""
        with self._lock:
            if len(self._entries) + self._reserved >= self.max_sessions:
                raise TooManySessionsError(self.max_sessions)
            self._reserved += 1

    def unreserve(self) -> None:
        """Give back a reservation whose session was not opened."""
        with self._lock:
            self._reserved -= 1

    def add(self, handle: str, session: S) -> None:
        """Store a newly opened session under ``handle`` (uses one reservation)."""
        with self._lock:
            self._reserved -= 1
            self._entries[handle] = SessionEntry(handle, session, self._clock())

    def acquire(self, handle: str) -> SessionEntry[S]:
        """Start a call on the session ``handle``; raise :class:`UnknownHandleError` if not open."""
        with self._lock:
            entry = self._entries.get(handle)
            if entry is None:
                raise UnknownHandleError()
            entry.users += 1
            entry.last_used = self._clock()
            return entry

    def release(self, entry: SessionEntry[S]) -> S | None:
        """End a call on ``entry``; returns its session if it must now be closed."""
        with self._lock:
            entry.users -= 1
            entry.last_used = self._clock()
            if entry.closing and entry.users == 0:
                return entry.session
            return None

    def remove(self, handle: str) -> S | None:
        """Close ``handle``: it is unknown from now on; returns the session to close now.

        ``None`` means calls still use it; the last :meth:`release` returns it.
        Raises :class:`UnknownHandleError` if the handle is not open.
        """
        with self._lock:
            entry = self._entries.pop(handle, None)
            if entry is None:
                raise UnknownHandleError()
            return self._closing(entry)

    def expire(self) -> list[S]:
        """Remove the sessions idle for longer than the timeout; returns them to close."""
        with self._lock:
            deadline = self._clock() - self.idle_timeout
            idle = [
                entry
                for entry in self._entries.values()
                if entry.users == 0 and entry.last_used <= deadline
            ]
            for entry in idle:
                del self._entries[entry.handle]
                entry.closing = True
            return [entry.session for entry in idle]

    def drain(self) -> list[S]:
        """Remove every session (shutdown, lost lease); returns those to close now."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
            return [entry.session for entry in entries if self._closing(entry) is not None]

    def next_expiry(self) -> float | None:
        """Seconds until the next idle session expires (``None`` without idle sessions)."""
        with self._lock:
            idle = [e.last_used for e in self._entries.values() if e.users == 0]
        if not idle:
            return None
        return max(0.0, min(idle) + self.idle_timeout - self._clock())

    def _closing(self, entry: SessionEntry[S]) -> S | None:
        entry.closing = True
        return entry.session if entry.users == 0 else None
