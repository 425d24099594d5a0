"""The session table: limits, idle expiry, exactly-once close (plain code, fake clock)."""

from __future__ import annotations

import pytest

from transport import StatusCode
from transport.runtime.handles import UnknownHandleError
from transport.runtime.sessions import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_SESSIONS,
    SessionTable,
    TooManySessionsError,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _table(clock: Clock, *, max_sessions: int = 3, idle: float = 10.0) -> SessionTable[str]:
    return SessionTable(max_sessions=max_sessions, idle_timeout=idle, clock=clock)


def _open(table: SessionTable[str], name: str) -> None:
    table.reserve()
    table.add(name, name)


def test_documented_defaults() -> None:
    assert DEFAULT_MAX_SESSIONS == 64
    assert DEFAULT_IDLE_TIMEOUT == 300.0
    table: SessionTable[str] = SessionTable()
    assert table.max_sessions == 64 and table.idle_timeout == 300.0


def test_the_limit_counts_sessions_being_opened() -> None:
    table = _table(Clock(), max_sessions=2)
    _open(table, "a")
    table.reserve()  # "b" is loading
    with pytest.raises(TooManySessionsError) as caught:
        table.reserve()
    assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details == {"maxSessions": 2}
    table.unreserve()  # loading "b" failed
    _open(table, "c")
    assert len(table) == 2
    assert table.remove("a") == "a"
    _open(table, "d")


def test_closing_hands_the_session_out_once_and_forgets_the_handle() -> None:
    table = _table(Clock())
    _open(table, "a")
    assert table.remove("a") == "a"
    for forget in (table.remove, table.acquire):
        with pytest.raises(UnknownHandleError):
            forget("a")
    assert table.expire() == [] and table.drain() == []


def test_a_session_in_use_is_closed_by_its_last_call() -> None:
    table = _table(Clock())
    _open(table, "a")
    first, second = table.acquire("a"), table.acquire("a")
    assert table.remove("a") is None  # two calls still run
    with pytest.raises(UnknownHandleError):
        table.acquire("a")
    assert table.release(first) is None
    assert table.release(second) == "a"
    assert len(table) == 0


def test_idle_sessions_expire_once_and_busy_ones_never() -> None:
    clock = Clock()
    table = _table(clock, idle=10.0)
    _open(table, "idle")
    _open(table, "busy")
    _open(table, "touched")
    busy = table.acquire("busy")
    clock.now = 6.0
    table.release(table.acquire("touched"))
    assert table.next_expiry() == pytest.approx(4.0)
    clock.now = 10.0
    assert table.expire() == ["idle"]
    assert table.expire() == []
    clock.now = 100.0
    assert table.expire() == ["touched"]
    assert table.release(busy) is None  # not closing: it was in use, so not idle
    assert len(table) == 1
    assert table.next_expiry() == pytest.approx(10.0)
    clock.now = 110.0
    assert table.expire() == ["busy"]
    assert table.next_expiry() is None


def test_drain_closes_everything_exactly_once() -> None:
    table = _table(Clock(), max_sessions=5)
    for name in "abc":
        _open(table, name)
    running = table.acquire("b")
    assert sorted(table.drain()) == ["a", "c"]
    assert table.release(running) == "b"
    assert table.drain() == [] and len(table) == 0


def test_every_path_together_closes_each_session_exactly_once() -> None:
    clock = Clock()
    table = _table(clock, max_sessions=50, idle=5.0)
    closed: list[str] = []
    names = [f"s{i}" for i in range(30)]
    for name in names:
        _open(table, name)
    calls = [table.acquire(name) for name in names[::3]]
    for name in names[::2]:
        got = table.remove(name)
        closed += [got] if got else []
    clock.now = 10.0
    closed += table.expire()
    for call in calls:
        got = table.release(call)
        closed += [got] if got else []
    closed += table.drain()
    assert sorted(closed) == sorted(names)


@pytest.mark.parametrize(("limit", "idle"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_nonsense_limits_are_refused(limit: int, idle: float) -> None:
    with pytest.raises(ValueError):
        SessionTable(max_sessions=limit, idle_timeout=idle)
