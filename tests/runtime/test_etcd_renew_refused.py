"""A renewal that finds the etcd key gone, or on another lease, is refused.

The owner's etcd lease still lives in both cases: only the key's compare in
the renewal's write tells the owner that the record is no longer its own.
Each test fails if ``EtcdLeaseStore.renew`` ignores that compare.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import pytest

from tests.etcd_cluster import EtcdCluster, needs_etcd
from transport.runtime import LeaseRecord, etcd
from transport.runtime.etcd_lease import EtcdLeaseStore, parse_etcd_url
from transport.runtime.process import DaemonProcess

TTL = 2.0  # etcd's smallest lease with default timings


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path_factory.mktemp("etcd-renew"), size=1) as cluster:
        yield cluster


@pytest.fixture
def store(one: EtcdCluster, request: pytest.FixtureRequest) -> Iterator[EtcdLeaseStore]:
    opened = EtcdLeaseStore.from_url(one.url(request.node.name.replace("_", "-")))
    try:
        yield opened
    finally:
        opened.close()


def _key(store: EtcdLeaseStore) -> bytes:
    return store.key.encode()


def _delete(store: EtcdLeaseStore) -> None:
    """Delete the key by hand, leaving its lease alive."""
    store.gateway.call("kv/deleterange", etcd._Range(_key(store)), etcd._Revoked)


def _put(store: EtcdLeaseStore, value: bytes, lease: int) -> None:
    """Put the key on ``lease`` by hand (a put keeps the key's create revision)."""
    store.gateway.call("kv/put", etcd._Put(_key(store), value, str(lease)), etcd._Revoked)


def _held_lease(store: EtcdLeaseStore) -> int:
    kv, _, _ = etcd.get(store.gateway, _key(store))
    assert kv is not None
    return int(kv.lease)


def _alive(store: EtcdLeaseStore, lease: int) -> bool:
    left, _, _ = etcd.keep_alive(store.gateway, lease)
    return left > 0


def _acquire(store: EtcdLeaseStore) -> tuple[LeaseRecord, int]:
    held = store.acquire("owner-a", "127.0.0.1:1", TTL)
    assert held is not None
    return held, _held_lease(store)


@needs_etcd
def test_a_renewal_finding_the_key_deleted_is_refused_and_revokes_the_lease(
    store: EtcdLeaseStore,
) -> None:
    held, lease = _acquire(store)
    _delete(store)
    assert _alive(store, lease)  # the owner's lease lives: only the key is gone
    assert store.renew(held, TTL) is None
    assert not _alive(store, lease)
    assert store.renew(held, TTL) is None  # and stays refused


@needs_etcd
def test_a_renewal_finding_the_key_on_another_lease_is_refused_and_revokes_the_lease(
    store: EtcdLeaseStore,
) -> None:
    held, lease = _acquire(store)
    other, _ = etcd.grant(store.gateway, 30)
    try:
        kv, _, _ = etcd.get(store.gateway, _key(store))
        assert kv is not None
        _put(store, kv.value, other)  # same record, same create revision, another lease
        assert store.renew(held, TTL) is None
        assert not _alive(store, lease)
        still = store.read()  # the key the other lease holds is left alone
        assert still is not None and _held_lease(store) == other
    finally:
        etcd.revoke(store.gateway, other)


@needs_etcd
@pytest.mark.slow
def test_a_daemon_whose_key_moved_to_another_owner_stops_serving(store: EtcdLeaseStore) -> None:
    args = ("--listen", "127.0.0.1:0", "--lease-ttl", str(TTL), "--instance-id", "owner-a")
    with DaemonProcess(*args, "--lease", store.url, name="owner-a") as owner:
        assert owner.wait_ready(timeout=15).instance_id == "owner-a"
        other, _ = etcd.grant(store.gateway, 30)
        try:
            record = {"instanceId": "owner-b", "endpoint": "127.0.0.1:2", "term": 1, "ttl": 30}
            _put(store, msgspec.json.encode({**record, "validUntil": 0.0}), other)
            status = owner.wait_ready(timeout=3 * TTL, ready=False)
            assert status.instance_id == "owner-a"
            now = store.read()
            assert now is not None and now.instance_id == "owner-b"
        finally:
            etcd.revoke(store.gateway, other)


@needs_etcd
def test_a_renewal_writes_valid_until_one_ttl_ahead(store: EtcdLeaseStore) -> None:
    # validUntil is what a standby waits out when etcd deleted a live owner's key.
    held, _ = _acquire(store)
    before = time.time()
    assert store.renew(held, TTL) is not None
    after = time.time()
    kv, _, _ = etcd.get(store.gateway, _key(store))
    assert kv is not None
    valid_until = msgspec.json.decode(kv.value)["validUntil"]
    assert before + TTL <= valid_until <= after + TTL
    store.release(held)


@pytest.mark.parametrize("port", ["0", "65536", "70000"])
def test_an_etcd_url_with_a_port_out_of_range_is_refused(port: str) -> None:
    with pytest.raises(ValueError, match="has no valid port"):
        parse_etcd_url(f"etcd://127.0.0.1:{port}/transport/model")
