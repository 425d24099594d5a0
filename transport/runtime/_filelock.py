"""An exclusive lock on an open file, the platform's own: ``flock`` on POSIX, ``msvcrt`` on Windows.

Both locks belong to the process and go when it dies, so a crashed owner
never leaves the lease file locked. The platform's module is imported when a
lock is taken, not with this module: a Python that has neither (a stripped
build) imports the whole package and says :data:`NO_FILE_LOCK` only when a
file lease is used.
"""

from __future__ import annotations

import errno
import importlib
import sys

__all__ = ["NO_FILE_LOCK", "NoFileLockError", "available", "try_lock", "unlock"]

#: What a platform without a file lock says when a file lease is used.
NO_FILE_LOCK = (
    "the file lease needs fcntl (POSIX) or msvcrt (Windows) to lock its file, and this "
    "Python has neither: use an etcd:// lease, or serve without --lease"
)

# A lock another process holds: flock says EAGAIN (EWOULDBLOCK), msvcrt EACCES or EDEADLOCK.
_HELD = {errno.EAGAIN, errno.EACCES, errno.EDEADLK}


class NoFileLockError(Exception):
    """Raised when this platform has no file lock (neither ``fcntl`` nor ``msvcrt``)."""


def available() -> bool:
    """Whether this platform can lock a file (and so keep a file lease)."""
    try:
        importlib.import_module("msvcrt" if sys.platform == "win32" else "fcntl")
    except ImportError:
        return False
    return True


def try_lock(fd: int) -> bool:
    """Lock the open file ``fd`` exclusively now; ``False`` if another process holds it.

    :class:`NoFileLockError` if the platform has no lock; any other failure is an ``OSError``.
    """
    try:
        if sys.platform == "win32":
            import msvcrt

            # Byte 0 (the descriptor is fresh, at 0), even past the end of an empty file.
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:
        raise NoFileLockError(NO_FILE_LOCK) from None
    except OSError as exc:
        if exc.errno in _HELD:
            return False
        raise
    return True


def unlock(fd: int) -> None:
    """Drop the lock :func:`try_lock` took on ``fd``; call it before closing ``fd``.

    Closing drops a ``flock`` too, but Windows asks for the unlock first.
    """
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)
