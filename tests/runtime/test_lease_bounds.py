"""The lease's bounds written out: the term is an int64, a renewal needs owner and term both.

The numbers are literal here, not read from the modules: a test that read
them would follow a changed bound.
"""

from __future__ import annotations

import fcntl
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from transport.runtime.lease import MAX_TERM, FileLeaseStore, LeaseRecord
from transport.runtime.sessions import SessionTable

LATER = datetime.now(timezone.utc) + timedelta(hours=1)


def _held(instance_id: str, term: int) -> LeaseRecord:
    return LeaseRecord(instance_id=instance_id, endpoint="e", term=term, expires_at=LATER)


def test_the_last_term_is_int64s_maximum() -> None:
    assert MAX_TERM == 9_223_372_036_854_775_807


def test_same_term_needs_the_same_owner_and_the_same_term() -> None:
    held = _held("a", 5)
    assert held.same_term(_held("a", 5))
    assert not held.same_term(_held("a", 6))
    assert not held.same_term(_held("b", 5))


def test_a_renewal_of_an_owner_that_took_the_lease_again_in_a_later_term_is_refused(
    tmp_path: object,
) -> None:
    store = FileLeaseStore(f"{tmp_path}/lease")
    first = store.acquire("a", "e", 10.0)
    assert first is not None
    store.release(first)
    again = store.acquire("a", "e", 10.0)  # the same owner, the next term
    assert again is not None and again.term == first.term + 1
    assert store.renew(first, 10.0) is None  # the first term is over
    assert store.renew(again, 10.0) is not None


def test_one_session_is_a_valid_limit() -> None:
    assert SessionTable(max_sessions=1).max_sessions == 1


def test_a_lock_held_for_less_than_the_lock_timeout_is_waited_for(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease", lock_timeout=5.0)
    with open(store.lock_path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another writer, busy for a moment
        unlock = threading.Timer(0.3, fcntl.flock, (held, fcntl.LOCK_UN))
        unlock.start()
        try:
            started = time.monotonic()
            assert store.acquire("a", "e", 10.0) is not None  # waited, then took it
            assert 0.2 < time.monotonic() - started < 5.0
        finally:
            unlock.join()
