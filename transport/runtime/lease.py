"""Lease records and where they live: the store interface and the embedded lease file.

A lease names the owner of a model daemon: its instance id, the endpoint it
advertises, a term that grows by one at every takeover (the fencing token),
and a wall-clock expiry. A :class:`LeaseStore` changes records only by
compare-and-set, so a distributed store (etcd, a database row) can stand in
for :class:`FileLeaseStore`, the default for one machine. Plain code, no grpc.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Protocol, TypeVar, runtime_checkable

import msgspec

from ..encoding.json_codec import Message
from ..errors import TransportError
from ._filelock import NoFileLockError, try_lock, unlock
from ._filelock import available as _lock_available

__all__ = [
    "MAX_TERM",
    "FileLeaseStore",
    "LeaseError",
    "LeaseRecord",
    "LeaseStore",
    "file_leases_work",
    "utc_now",
]

#: The last term (int64's maximum): a lease store never grows the term past it.
MAX_TERM = 2**63 - 1


class LeaseError(TransportError):
    """Raised when the lease store cannot be read or written (unreadable file, lock timeout)."""


def file_leases_work() -> bool:
    """Whether this platform can lock a file, and so keep a :class:`FileLeaseStore`."""
    return _lock_available()


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(timezone.utc)


class LeaseRecord(Message):
    """Who owns the daemon, where it listens, in which term, until when (RFC 3339)."""

    instance_id: str
    endpoint: str
    term: Annotated[int, msgspec.Meta(ge=0, le=MAX_TERM)]
    expires_at: Annotated[datetime, msgspec.Meta(tz=True)]

    def expired(self, now: datetime) -> bool:
        """Whether the lease has expired at wall-clock time ``now``."""
        return now >= self.expires_at

    def same_term(self, other: LeaseRecord) -> bool:
        """Whether ``other`` is this owner's record in this term."""
        return other.instance_id == self.instance_id and other.term == self.term


@runtime_checkable
class LeaseStore(Protocol):
    """Where lease records live. Every change is a compare-and-set on the current record.

    The whole protocol: the four changes (:meth:`read`, :meth:`acquire`,
    :meth:`renew`, :meth:`release`) and what the runtime asks of a store
    besides (:meth:`check`, :meth:`follow`, :attr:`poll_interval`,
    :meth:`close`). A store that subclasses ``LeaseStore`` inherits defaults
    for the latter, right for a store that neither watches nor holds
    connections (:class:`FileLeaseStore`).
    """

    def read(self) -> LeaseRecord | None:
        """The current record, or ``None`` if no owner ever held the lease."""
        ...

    def acquire(self, instance_id: str, endpoint: str, ttl: float) -> LeaseRecord | None:
        """Take the lease if it is free or expired, in the next term; ``None`` if held.

        A record of the same ``instance_id`` that has not expired is held too:
        two processes started with one id must not both own.
        """
        ...

    def renew(self, held: LeaseRecord, ttl: float) -> LeaseRecord | None:
        """Extend ``held`` by ``ttl`` from now if it is still current; ``None`` if taken over.

        Current means the same owner and term, even if expired: nobody else
        owned in between, so the owner may carry on.
        """
        ...

    def release(self, held: LeaseRecord) -> None:
        """Expire ``held`` now, if it is still current, so a standby takes over at once."""
        ...

    @property
    def poll_interval(self) -> float | None:
        """Seconds the owner loop pauses between a standby's polls; ``None``: its own pace.

        The owner's pace is ``ttl / 10``; a store whose :meth:`acquire` waits
        for the lease to be freed (etcd watches its key) names a shorter pause.
        """
        return None

    def check(self, *, wait: bool = False) -> None:
        """Raise :class:`LeaseError` now if this process could never use the store.

        ``serve`` calls it at start: a store it could never write would leave
        the daemon waiting as a standby forever. With ``wait``, a store that
        is unreachable for now (etcd down) is waited for instead. The default
        reads the record.
        """
        self.read()

    def follow(self, on_change: Callable[[LeaseRecord | None], None]) -> Callable[[], None] | None:
        """Call ``on_change(record)`` at every change of owner; returns ``stop``.

        ``None`` when the store cannot watch (the default: a file is polled):
        clients then re-resolve the owner after a refused call.
        """
        return None

    def close(self) -> None:
        """Let go of what the store holds open (connections); the default holds nothing."""
        return None


def next_term(current: LeaseRecord | None, where: object) -> int:
    """The term after ``current`` (1 for the first owner); LeaseError past :data:`MAX_TERM`."""
    if current is None:
        return 1
    if current.term >= MAX_TERM:
        raise LeaseError(f"the lease term in {where} reached {MAX_TERM}: reset the lease")
    return current.term + 1


_WINDOWS = sys.platform == "win32"
_T = TypeVar("_T")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LeaseRecord)


class FileLeaseStore(LeaseStore):
    """A lease in a JSON file, safe against concurrent writers on one machine.

    Each change runs under an exclusive lock of ``<path>.lock`` (``flock`` on
    POSIX, ``msvcrt.locking`` on Windows) and replaces the file atomically
    (write a temporary file in the same directory, fsync, rename), so readers
    see the old or the new record, never a torn one.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.lock_timeout = lock_timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"FileLeaseStore({str(self.path)!r})"

    def read(self) -> LeaseRecord | None:
        """The current record (no lock needed: the file is only ever replaced whole)."""
        try:
            data = self._patiently(self.path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise LeaseError(f"cannot read lease file {self.path}: {exc}") from exc
        if not data.strip():
            return None
        try:
            return _decoder.decode(data)
        except msgspec.DecodeError as exc:
            raise LeaseError(f"lease file {self.path} is not a lease record: {exc}") from None

    def check(self, *, wait: bool = False) -> None:
        """Raise :class:`LeaseError` now if this process cannot lock and replace the lease file.

        ``serve`` calls it at start: a lease it could never write would leave
        the daemon waiting as a standby forever. ``wait`` changes nothing here:
        a file that cannot be written now will not become writable by waiting.
        """
        with self._locked():
            probe = self.path.with_name(f".{self.path.name}.{os.getpid()}.probe")
            try:
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise LeaseError(f"cannot write next to lease file {self.path}: {exc}") from exc

    def acquire(self, instance_id: str, endpoint: str, ttl: float) -> LeaseRecord | None:
        """Take the lease if it is free or expired, in the next term; ``None`` if held."""
        with self._locked():
            current = self.read()
            now = self._clock()
            if current is not None and not current.expired(now):
                return None
            record = LeaseRecord(
                instance_id=instance_id,
                endpoint=endpoint,
                term=next_term(current, self.path),
                expires_at=now + timedelta(seconds=ttl),
            )
            self._write(record)
            return record

    def renew(self, held: LeaseRecord, ttl: float) -> LeaseRecord | None:
        """Extend ``held`` by ``ttl`` from now if it is still current; ``None`` if taken over."""
        with self._locked():
            current = self.read()
            if current is None or not current.same_term(held):
                return None
            record = msgspec.structs.replace(
                held, expires_at=self._clock() + timedelta(seconds=ttl)
            )
            self._write(record)
            return record

    def release(self, held: LeaseRecord) -> None:
        """Expire ``held`` now if it is still current (a standby may take over at once)."""
        with self._locked():
            current = self.read()
            if current is not None and current.same_term(held):
                self._write(msgspec.structs.replace(held, expires_at=self._clock()))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LeaseError(f"cannot open lease lock {self.lock_path}: {exc}") from exc
        try:
            self._lock(fd)
            try:
                yield
            finally:
                unlock(fd)
        finally:
            os.close(fd)

    def _lock(self, fd: int) -> None:
        # Poll rather than block: a writer stopped while holding the lock must
        # not hang every other process's owner loop forever.
        deadline = time.monotonic() + self.lock_timeout
        try:
            while not try_lock(fd):
                if time.monotonic() >= deadline:
                    raise LeaseError(f"{self.lock_path} stayed locked for {self.lock_timeout} s")
                time.sleep(0.002)
        except NoFileLockError as exc:
            raise LeaseError(str(exc)) from None
        except OSError as exc:
            raise LeaseError(f"cannot lock {self.lock_path}: {exc}") from exc

    def _write(self, record: LeaseRecord) -> None:
        temporary = self.path.with_name(
            f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        )
        try:
            with open(temporary, "wb") as file:
                file.write(_encoder.encode(record) + b"\n")
                file.flush()
                os.fsync(file.fileno())
            self._patiently(lambda: os.replace(temporary, self.path))
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise LeaseError(f"cannot write lease file {self.path}: {exc}") from exc

    def _patiently(self, action: Callable[[], _T]) -> _T:
        """``action()``, retried for up to ``lock_timeout`` while Windows refuses it.

        Windows refuses to replace a file another process has open, and to
        open one being replaced; readers take no lock, so writer and reader
        wait out each other's brief access. Elsewhere the first refusal stands.
        """
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                return action()
            except PermissionError:
                if not _WINDOWS or time.monotonic() >= deadline:
                    raise
                time.sleep(0.002)
