"""Lease records, the lease file and the owner loop: plain code on fake clocks, then processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from transport.runtime import lease
from transport.runtime._filelock import NO_FILE_LOCK, try_lock, unlock
from transport.runtime.fence import Fence
from transport.runtime.lease import FileLeaseStore, LeaseError, LeaseRecord
from transport.runtime.owner import DEFAULT_LEASE_TTL, Owner

EPOCH = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


class World:
    """One machine's clocks: monotonic seconds and the wall clock, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def wall(self, rate: float = 1.0, offset: float = 0.0) -> Callable[[], datetime]:
        """A wall clock that runs at ``rate`` relative to the monotonic one."""
        return lambda: EPOCH + timedelta(seconds=(self.seconds - 1000.0) * rate + offset)


def _owner(
    world: World, store: FileLeaseStore, name: str, ttl: float = 10.0, **options: object
) -> Owner:
    return Owner(
        store,
        Fence(name, holding=False, clock=world.monotonic),
        f"127.0.0.1:{len(name)}",
        ttl=ttl,
        monotonic=world.monotonic,
        **options,  # type: ignore[arg-type]
    )


# -- the lease file --------------------------------------------------------------------


def test_the_lease_file_is_json_with_the_four_keys(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    record = store.acquire("owner-a", "127.0.0.1:5000", 10.0)
    assert record == LeaseRecord(
        instance_id="owner-a",
        endpoint="127.0.0.1:5000",
        term=1,
        expires_at=EPOCH + timedelta(seconds=10),
    )
    text = (tmp_path / "lease").read_text()
    data = json.loads(text)
    assert list(data) == ["instanceId", "endpoint", "term", "expiresAt"]
    assert data["expiresAt"] == "2026-11-22T12:00:10Z"
    assert datetime.fromisoformat(data["expiresAt"].replace("Z", "+00:00")) == record.expires_at
    assert store.read() == record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lease", "lease.lock"]


def test_read_tolerates_no_file_and_refuses_garbage(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease")
    assert store.read() is None
    (tmp_path / "lease").write_text("  \n")
    assert store.read() is None
    (tmp_path / "lease").write_text('{"instanceId": "a"}')
    with pytest.raises(LeaseError, match="not a lease record"):
        store.read()
    (tmp_path / "lease").write_text(
        '{"instanceId":"a","endpoint":"e","term":1,"expiresAt":"2026-11-22T12:00:10"}'
    )
    with pytest.raises(LeaseError, match="timezone"):
        store.read()
    with pytest.raises(LeaseError):  # never clobber what we cannot read
        store.acquire("b", "e", 1.0)


def test_a_held_lease_is_not_acquired_even_under_the_same_id(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    held = store.acquire("owner-a", "e", 10.0)
    assert held is not None
    assert store.acquire("owner-b", "e", 10.0) is None
    assert store.acquire("owner-a", "e", 10.0) is None
    world.seconds += 9.999
    assert store.acquire("owner-b", "e", 10.0) is None
    world.seconds += 0.001
    taken = store.acquire("owner-b", "e2", 10.0)
    assert taken is not None and taken.term == 2 and taken.endpoint == "e2"


def test_renew_is_compare_and_set_on_owner_and_term(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    held = store.acquire("owner-a", "e", 10.0)
    assert held is not None
    world.seconds += 12.0  # expired, but nobody took it: the owner may carry on
    renewed = store.renew(held, 10.0)
    assert renewed is not None and renewed.term == 1
    assert renewed.expires_at == EPOCH + timedelta(seconds=22)
    world.seconds += 11.0
    taken = store.acquire("owner-b", "e", 10.0)
    assert taken is not None
    assert store.renew(renewed, 10.0) is None
    store.release(renewed)  # not current: no effect
    assert store.read() == taken


def test_release_expires_the_lease_now(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    held = store.acquire("owner-a", "e", 10.0)
    assert held is not None
    world.seconds += 1.0
    store.release(held)
    released = store.read()
    assert released is not None and released.expires_at == EPOCH + timedelta(seconds=1)
    taken = store.acquire("owner-b", "e", 10.0)
    assert taken is not None and taken.term == 2


def test_a_stuck_lock_is_an_error_after_the_lock_timeout(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease", lock_timeout=0.05)
    with open(store.lock_path, "w") as lock:
        assert try_lock(lock.fileno())
        with pytest.raises(LeaseError, match="stayed locked"):
            store.acquire("owner-a", "e", 1.0)
        unlock(lock.fileno())
    assert store.acquire("owner-a", "e", 1.0) is not None


def test_without_a_file_lock_the_lease_file_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in ("fcntl", "msvcrt"):  # `import` raises ImportError, as on a stripped build
        monkeypatch.setitem(sys.modules, module, None)
    store = FileLeaseStore(tmp_path / "lease")
    with pytest.raises(LeaseError) as refused:
        store.check()  # what serve calls at start
    assert str(refused.value) == NO_FILE_LOCK
    with pytest.raises(LeaseError, match=r"^the file lease needs fcntl"):
        store.acquire("owner-a", "e", 1.0)
    assert store.read() is None  # reading needs no lock


def _refused(times: int, real: Callable[..., Any]) -> tuple[list[int], Callable[..., Any]]:
    """``real``, refused ``times`` times as Windows refuses a file another process has open."""
    refusals = [0]

    def refusing(*args: Any) -> Any:
        if refusals[0] < times:
            refusals[0] += 1
            raise PermissionError(13, "The process cannot access the file")
        return real(*args)

    return refusals, refusing


def test_on_windows_a_write_and_a_read_wait_out_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileLeaseStore(tmp_path / "lease", lock_timeout=5.0)
    monkeypatch.setattr(lease, "_WINDOWS", True)
    replaced, replace = _refused(3, os.replace)
    monkeypatch.setattr(os, "replace", replace)
    record = store.acquire("owner-a", "e", 1.0)
    read, read_bytes = _refused(3, Path.read_bytes)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert store.read() == record
    assert (replaced, read) == ([3], [3])


def test_elsewhere_a_refused_write_is_an_error_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileLeaseStore(tmp_path / "lease", lock_timeout=5.0)
    refusals, replace = _refused(3, os.replace)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(LeaseError, match="cannot write lease file"):
        store.acquire("owner-a", "e", 1.0)
    assert refusals == [1]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["lease.lock"]  # no temporary left


# -- the owner loop's decisions ----------------------------------------------------------


def test_an_owner_acquires_renews_and_stops_before_its_lease_can_expire(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    acquired: list[LeaseRecord] = []
    owner = _owner(world, store, "owner-a", on_acquired=acquired.append)
    assert owner.renew_interval == pytest.approx(10 / 3) and owner.safety_margin == 2.0
    assert owner.step() == owner.renew_interval
    assert [r.term for r in acquired] == [1] and owner.fence.holds_lease
    world.seconds += 7.999
    assert owner.fence.holds_lease
    world.seconds += 0.001  # ttl - safety margin after the acquire began
    assert not owner.fence.holds_lease
    owner.step()  # a late renewal restores it (same term)
    assert owner.fence.holds_lease and len(acquired) == 1
    assert owner.record is not None and owner.record.term == 1


def test_a_standby_waits_then_takes_over_in_the_next_term(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    a, b = _owner(world, store, "owner-a"), _owner(world, store, "owner-b")
    a.step()
    assert b.step() == b.poll_interval and not b.fence.holds_lease
    world.seconds += 10.0
    b.step()
    assert b.fence.holds_lease and b.record is not None and b.record.term == 2
    assert store.read() == b.record


def test_an_owner_that_finds_the_lease_taken_stops_and_reports_it(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    lost: list[LeaseRecord] = []
    a = _owner(world, store, "owner-a", on_lost=lost.append)
    b = _owner(world, store, "owner-b")
    a.step()
    world.seconds += 30.0  # a was paused
    b.step()
    a.step()
    assert [r.term for r in lost] == [1]
    assert a.record is None and not a.fence.holds_lease
    a.step()  # back to standby: b holds it
    assert a.record is None


def test_a_released_lease_is_taken_over_at_once(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease", clock=world.wall())
    a, b = _owner(world, store, "owner-a"), _owner(world, store, "owner-b")
    a.step()
    a.release()
    assert not a.fence.holds_lease
    b.step()
    assert b.record is not None and b.record.term == 2
    a.release()  # twice: harmless


@pytest.mark.parametrize(
    ("rate", "safe"),
    [(1.0, True), (0.9, True), (1.1, True), (1.25, False)],
    ids=["same-rate", "standby-10%-slow", "standby-10%-fast", "standby-25%-fast"],
)
def test_the_timing_argument(tmp_path: Path, rate: float, safe: bool) -> None:
    """A paused owner stops before a standby can start, if clocks agree within the margin."""
    world = World()
    path = tmp_path / "lease"
    a = _owner(world, FileLeaseStore(path, clock=world.wall()), "owner-a")
    # The standby reads a wall clock running at `rate` (drift), from the same start.
    b = _owner(world, FileLeaseStore(path, clock=world.wall(rate)), "owner-b")
    a.step()  # ...and then a is paused, or cut off from the store, for good
    a_last = b_first = None
    while b_first is None:
        world.seconds += 0.01
        if a.fence.holds_lease:
            a_last = world.seconds
        b.step()
        if b.fence.holds_lease:
            b_first = world.seconds
    assert a_last is not None
    assert (a_last < b_first) is safe


def test_bad_owner_settings_are_refused(tmp_path: Path) -> None:
    world = World()
    store = FileLeaseStore(tmp_path / "lease")
    with pytest.raises(ValueError, match="instance id"):
        Owner(store, Fence(""), "e")
    with pytest.raises(ValueError, match="renew_interval"):
        _owner(world, store, "a", ttl=1.0, renew_interval=0.9)
    assert DEFAULT_LEASE_TTL == 10.0


class FailingStore(FileLeaseStore):
    failing = False

    def renew(self, held: LeaseRecord, ttl: float) -> LeaseRecord | None:
        if self.failing:
            raise LeaseError("disk unplugged")
        return super().renew(held, ttl)


@pytest.mark.anyio
async def test_the_driver_holds_renews_and_reports_a_lapse_when_the_store_fails(
    tmp_path: Path,
) -> None:
    store = FailingStore(tmp_path / "lease")
    fence = Fence("owner-a", holding=False)
    heard: list[bool] = []
    fence.subscribe(heard.append)
    owner = Owner(store, fence, "e", ttl=0.3)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(owner.run)
        with anyio.fail_after(5):
            while not heard:
                await anyio.sleep(0.01)
            first = store.read()
            while store.read() == first:  # renewed in place
                await anyio.sleep(0.01)
            store.failing = True
            while heard != [True, False]:
                await anyio.sleep(0.01)
        owner.stop()
    assert not fence.holds_lease
    owner.release()
    record = store.read()
    assert record is not None and record.term == 1


# -- concurrent writers, in real processes ----------------------------------------------

WORKER = r"""
import json, os, sys, time
from transport.runtime.lease import FileLeaseStore
path, name, go = sys.argv[1], sys.argv[2], sys.argv[3]
store = FileLeaseStore(path)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
held, ops, end = None, 0, time.monotonic() + 1.0
while time.monotonic() < end:
    ops += 1
    if held is not None and ops % 11 == 0:
        time.sleep(0.03)  # paused past the lease: another writer may take over
    if held is not None and ops % 17 == 0:
        store.release(held)
        print(json.dumps({"op": "release", "term": held.term, "name": name}), flush=True)
        held = None
        continue
    record = store.acquire(name, name, 0.02) if held is None else store.renew(held, 0.02)
    op = "acquire" if held is None else "renew"
    if record is not None:
        print(json.dumps({"op": op, "term": record.term, "name": record.instance_id,
                          "expiresAt": record.expires_at.isoformat()}), flush=True)
    held = record
"""


@pytest.mark.slow
def test_concurrent_writers_never_tear_or_double_hold_the_lease(tmp_path: Path) -> None:
    path, go = tmp_path / "lease", tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), f"w{i}", str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        reads, torn = [0], []
        stop = threading.Event()

        def reader() -> None:
            store = FileLeaseStore(path)
            while not stop.is_set():
                try:
                    store.read()
                    reads[0] += 1
                except LeaseError as exc:
                    torn.append(exc)

        watcher = threading.Thread(target=reader)
        watcher.start()
        go.touch()
        outputs = [worker.communicate(timeout=30)[0] for worker in workers]
        stop.set()
        watcher.join()
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert not torn and reads[0] > 10
    writes = [json.loads(line) for out in outputs for line in out.splitlines()]
    acquires = sorted(w["term"] for w in writes if w["op"] == "acquire")
    assert len(acquires) > 5, acquires
    assert acquires == list(range(1, len(acquires) + 1)), "every takeover is the next term"
    holders: dict[int, set[str]] = {}
    last_expiry: dict[int, datetime] = {}
    release_seen: set[int] = set()
    for out in outputs:
        for line in out.splitlines():
            write = json.loads(line)
            holders.setdefault(write["term"], set()).add(write["name"])
            if write["op"] == "release":
                release_seen.add(write["term"])
            else:
                last_expiry[write["term"]] = datetime.fromisoformat(write["expiresAt"])
    assert all(len(names) == 1 for names in holders.values()), "a term held twice"
    for term in acquires[1:]:
        acquired_at = last_expiry_of_acquire(writes, term)
        if term - 1 not in release_seen:
            # Without a release, the next owner started only after the lease expired.
            assert acquired_at >= last_expiry[term - 1]
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    os.stat(path)


def last_expiry_of_acquire(writes: list[dict[str, object]], term: int) -> datetime:
    """When the acquire of ``term`` happened: its expiry minus the 0.02 s ttl."""
    (acquire,) = [w for w in writes if w["op"] == "acquire" and w["term"] == term]
    return datetime.fromisoformat(str(acquire["expiresAt"])) - timedelta(seconds=0.02)
