"""The whole lease protocol: both stores implement every member the runtime calls.

mypy checks the assignments to ``LeaseStore`` below statically; the
``isinstance`` checks hold at run time (``LeaseStore`` is runtime-checkable).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from transport.runtime.client import OwnerWatch
from transport.runtime.etcd_lease import EtcdLeaseStore
from transport.runtime.fence import Fence
from transport.runtime.lease import FileLeaseStore, LeaseRecord, LeaseStore
from transport.runtime.owner import Owner

#: Every member a caller in the runtime or the command line uses.
MEMBERS = ("read", "acquire", "renew", "release", "check", "follow", "poll_interval", "close")

RECORD = LeaseRecord(
    instance_id="b",
    endpoint="127.0.0.1:2",
    term=2,
    expires_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
)


def _stores(tmp_path: Path) -> list[LeaseStore]:
    file: LeaseStore = FileLeaseStore(tmp_path / "lease")
    etcd: LeaseStore = EtcdLeaseStore([("127.0.0.1", 1)], "/transport/model")  # no connection yet
    return [file, etcd]


def test_both_stores_implement_the_whole_protocol(tmp_path: Path) -> None:
    for store in _stores(tmp_path):
        assert isinstance(store, LeaseStore), store
        for member in MEMBERS:
            assert hasattr(store, member), (store, member)
        store.close()


def test_the_protocol_names_every_member_and_a_partial_store_is_not_one() -> None:
    declared = {name for name in vars(LeaseStore) if not name.startswith("_")}
    assert declared == set(MEMBERS)

    class Partial:  # the four changes only, as LeaseStore named before
        def read(self) -> LeaseRecord | None:
            return None

        def acquire(self, instance_id: str, endpoint: str, ttl: float) -> LeaseRecord | None:
            return None

        def renew(self, held: LeaseRecord, ttl: float) -> LeaseRecord | None:
            return None

        def release(self, held: LeaseRecord) -> None:
            return None

    assert not isinstance(Partial(), LeaseStore)


def test_a_file_store_gets_the_defaults_where_they_mean_nothing(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease")
    assert store.poll_interval is None
    assert store.follow(lambda record: None) is None
    store.close()  # holds nothing: still usable
    assert store.acquire("a", "127.0.0.1:1", 10.0) is not None
    owner = Owner(store, Fence("a", holding=False), "127.0.0.1:1", ttl=1.0)
    assert owner.poll_interval == owner.retry_interval == 0.1


def test_a_store_that_names_its_poll_interval_paces_the_standby(tmp_path: Path) -> None:
    store = EtcdLeaseStore([("127.0.0.1", 1)], "/transport/model")
    try:
        owner = Owner(store, Fence("a", holding=False), "127.0.0.1:1", ttl=1.0)
        assert owner.poll_interval == store.poll_interval == 0.02
    finally:
        store.close()


class Following(FileLeaseStore):
    """A file store that reports one change through ``follow``, and says when stopped."""

    stopped = False

    def follow(self, on_change: Callable[[LeaseRecord | None], None]) -> Callable[[], None]:
        on_change(RECORD)

        def stop() -> None:
            self.stopped = True

        return stop


def test_a_client_follows_any_store_that_can_follow(tmp_path: Path) -> None:
    store = Following(tmp_path / "lease")
    watch = OwnerWatch(store)
    assert watch.take() == RECORD and watch.take() is None
    watch.close()
    assert store.stopped
    quiet = OwnerWatch(FileLeaseStore(tmp_path / "lease"))
    assert quiet.take() is None
    quiet.close()
