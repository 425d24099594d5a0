"""A lease held in etcd: owners on several machines elected and fenced through one cluster.

The owner record lives at the key ``/PREFIX/NAME`` as JSON (``instanceId``,
``endpoint``, ``term``, ``ttl``, ``validUntil``), attached to the owner's etcd
lease, so it exists exactly while that lease lives. The term is the key's
create revision: strictly increasing across owners. Acquire creates the key
only if it does not exist (a transaction); renew is a keepalive that counts
only when a write of ``validUntil``, answered by the same member in the same
raft term, finds the key still on this owner's lease (etcd before 3.4.31 lets a
leader that lost its quorum answer keepalives); release writes ``validUntil``
0 and revokes the lease. The owner measures its deadline on its own clock
from before the request (:mod:`.owner`); etcd expires the lease only later,
and a standby gets the key only after etcd deleted it, and, if the record it
last saw was still valid then (an etcd that revokes early), only once its
``validUntil`` has passed.
"""

from __future__ import annotations

import contextlib
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import msgspec

from . import etcd
from .etcd import EtcdError, EtcdUnavailableError, Gateway
from .lease import LeaseError, LeaseRecord, LeaseStore, utc_now

__all__ = [
    "EtcdLeaseStore",
    "check_etcd_lease",
    "close_store",
    "is_etcd_url",
    "parse_etcd_url",
]

_SCHEME = "etcd://"
_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._~@+=-]+")


class OwnerValue(msgspec.Struct, frozen=True, rename="camel"):
    """The JSON stored at the key: who owns, where it listens, its term and lease TTL.

    ``valid_until`` is the wall-clock time (Unix seconds) after which the owner
    has stopped serving unless it renewed: written at every renewal, 0 once it
    released the lease.
    """

    instance_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    endpoint: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    term: int
    ttl: Annotated[float, msgspec.Meta(gt=0, le=86400)]
    valid_until: float = 0.0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(OwnerValue)


def is_etcd_url(lease: object) -> bool:
    """Whether ``lease`` is an ``etcd://`` URL (rather than a lease file path)."""
    return isinstance(lease, str) and lease.startswith(_SCHEME)


def close_store(store: LeaseStore) -> None:
    """``store.close()`` (kept for callers of the name; every store has ``close`` now)."""
    store.close()


def parse_etcd_url(url: str) -> tuple[list[tuple[str, int]], str]:
    """``etcd://HOST:PORT[,HOST:PORT...]/PREFIX/NAME`` as ``([(host, port), ...], "/PREFIX/NAME")``.

    Raises ``ValueError`` naming what is wrong.
    """
    if not url.startswith(_SCHEME):
        raise ValueError(f"lease URL {url!r} must start with {_SCHEME}")
    authority, slash, path = url[len(_SCHEME) :].partition("/")
    if not authority:
        raise ValueError(f"lease URL {url!r} names no etcd endpoint (etcd://HOST:PORT/PREFIX/NAME)")
    endpoints = []
    for item in authority.split(","):
        host, colon, port = item.rpartition(":")
        if not colon or not _HOST.fullmatch(host):
            raise ValueError(f"lease URL {url!r}: endpoint {item!r} is not HOST:PORT")
        if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"lease URL {url!r}: endpoint {item!r} has no valid port")
        endpoints.append((host.strip("[]"), int(port)))
    segments = path.split("/") if slash else []
    if len(segments) < 2 or not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise ValueError(
            f"lease URL {url!r} must end in /PREFIX/NAME (letters, digits, '._~@+=-'; no empty "
            "segment, query or fragment)"
        )
    return endpoints, "/" + path


class EtcdLeaseStore(LeaseStore):
    """A :class:`~.lease.LeaseStore` in etcd, at ``key`` on the cluster at ``endpoints``.

    One store serves one owner (it remembers the etcd lease it holds); clients
    may share another. ``request_timeout`` bounds each request to a member.
    A standby's :meth:`acquire` waits up to ``ttl / 10`` (at most 1 s) for the
    key to be deleted, watching it, so it takes over as soon as etcd frees it;
    the owner loop then needs no pause between polls (:attr:`poll_interval`).
    """

    #: Seconds the owner loop pauses between a standby's polls (acquire waits itself).
    poll_interval: float = 0.02

    def __init__(
        self,
        endpoints: list[tuple[str, int]],
        key: str,
        *,
        request_timeout: float = 1.0,
    ) -> None:
        if not key.startswith("/"):
            raise ValueError(f"etcd lease key {key!r} must start with '/'")
        self.key = key
        self.gateway = Gateway(endpoints, timeout=request_timeout)
        self._key = key.encode()
        self._lock = threading.Lock()
        self._lease = 0  # the etcd lease of the term this store holds
        self._term = 0
        self._ttl = 0.0
        # The last owner record a standby saw: its validUntil and its revision.
        self._seen_valid_until = 0.0
        self._seen_revision = 0

    @classmethod
    def from_url(cls, url: str, *, request_timeout: float = 1.0) -> EtcdLeaseStore:
        """The store named by ``etcd://HOST:PORT[,HOST:PORT...]/PREFIX/NAME``."""
        endpoints, key = parse_etcd_url(url)
        return cls(endpoints, key, request_timeout=request_timeout)

    @property
    def url(self) -> str:
        """The ``etcd://`` URL of this store."""
        hosts = ",".join(
            f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.gateway.endpoints
        )
        return f"{_SCHEME}{hosts}{self.key}"

    def __repr__(self) -> str:
        return f"EtcdLeaseStore({self.url!r})"

    def read(self) -> LeaseRecord | None:
        """The current owner record, or ``None`` while no owner holds the key."""
        kv, _, _ = etcd.get(self.gateway, self._key)
        return None if kv is None else self._record(kv)

    def acquire(self, instance_id: str, endpoint: str, ttl: float) -> LeaseRecord | None:
        """Create the key on a new etcd lease if it is free; ``None`` if held.

        While it is held, wait up to ``ttl / 10`` (at most 1 s) for etcd to
        delete it (a release, an expiry) and then try.
        """
        kv, header, _ = etcd.get(self.gateway, self._key)
        revision = etcd.number(header.revision, "a revision")
        if kv is not None:
            self._saw(kv)
            freed = self._freed(revision, ttl)
            if freed is None:
                return None
            revision = freed
        elif self._seen_valid_until > time.time():  # it went while this store did not watch
            self._catch_up(revision, ttl)
        if not self._previous_owner_stopped(ttl):
            return None
        valid_until = time.time() + ttl
        lease, granted = etcd.grant(self.gateway, max(1, math.ceil(ttl)))
        try:
            if granted < ttl:
                raise EtcdError(f"etcd granted a lease of {granted} s, asked for {ttl} s")
            # The key's create revision will be the term: most likely the next revision.
            predicted = revision + 1
            value = self._value(instance_id, endpoint, predicted, ttl, valid_until)
            created, txn = etcd.create(self.gateway, self._key, value, lease)
            if not created:
                self._revoke_quietly(lease)
                return None
            term = etcd.number(txn.revision, "a revision")
            if term != predicted:  # other keys changed meanwhile: write the real term
                etcd.rewrite(
                    self.gateway,
                    self._key,
                    self._value(instance_id, endpoint, term, ttl, valid_until),
                    lease,
                    term,
                )
        except LeaseError:
            self._revoke_quietly(lease)
            raise
        with self._lock:
            self._lease, self._term, self._ttl = lease, term, ttl
            self._seen_valid_until = 0.0
        return LeaseRecord(
            instance_id=instance_id,
            endpoint=endpoint,
            term=term,
            expires_at=utc_now() + timedelta(seconds=min(ttl, granted)),
        )

    def renew(self, held: LeaseRecord, ttl: float) -> LeaseRecord | None:
        """Keep ``held``'s etcd lease alive; ``None`` if it is gone or the key is no longer on it.

        The keepalive counts only if a write of the record's ``validUntil``,
        answered by the same member in the same raft term, finds the key still
        on this lease; otherwise :class:`~.lease.LeaseError` (the owner retries,
        its deadline unmoved).
        """
        with self._lock:
            lease = self._lease if self._term == held.term else 0
        if not lease:
            return None
        valid_until = time.time() + ttl
        left, alive, member = etcd.keep_alive(self.gateway, lease)
        if left <= 0:
            self._forget(held.term)
            return None
        value = self._value(held.instance_id, held.endpoint, held.term, ttl, valid_until)
        kept, wrote = etcd.rewrite(self.gateway, self._key, value, lease, held.term, member=member)
        if (wrote.member_id, wrote.raft_term) != (alive.member_id, alive.raft_term):
            raise EtcdError(
                f"renewal of term {held.term} not confirmed: the keepalive came from member "
                f"{alive.member_id} in raft term {alive.raft_term}, the write from "
                f"{wrote.member_id} in {wrote.raft_term}"
            )
        if not kept:  # the key is gone or on another lease
            self._forget(held.term)
            self._revoke_quietly(lease)
            return None
        return msgspec.structs.replace(
            held, expires_at=utc_now() + timedelta(seconds=min(ttl, left))
        )

    def release(self, held: LeaseRecord) -> None:
        """Revoke ``held``'s etcd lease: etcd deletes the key, a standby takes over at once."""
        with self._lock:
            lease, ttl = (self._lease, self._ttl) if self._term == held.term else (0, 0.0)
        if lease:
            # validUntil 0 first: a standby that sees the key go takes over at once.
            released = self._value(held.instance_id, held.endpoint, held.term, ttl, 0.0)
            with contextlib.suppress(LeaseError):
                etcd.rewrite(self.gateway, self._key, released, lease, held.term)
            self._revoke(lease)
            self._forget(held.term)

    def follow(self, on_change: Callable[[LeaseRecord | None], None]) -> Callable[[], None]:
        """Call ``on_change(record)`` on a thread at every change of the key; returns ``stop``.

        Reports the current record first, then each new owner record, and
        ``None`` when the key is deleted. Errors are retried every half second.
        """
        stopped = threading.Event()

        def watch() -> None:
            gateway = Gateway(self.gateway.endpoints, timeout=self.gateway.timeout)
            try:
                while not stopped.is_set():
                    try:
                        follow_key(gateway)
                    except LeaseError:
                        stopped.wait(0.5)
            finally:
                gateway.close()

        def follow_key(gateway: Gateway) -> None:
            kv, header, _ = etcd.get(gateway, self._key)
            last = None if kv is None else self._record(kv)
            on_change(last)
            revision = etcd.number(header.revision, "a revision")
            while not stopped.is_set():
                for batch, events in gateway.watch(self._key, revision + 1, idle_timeout=2.0):
                    revision = max(revision, etcd.number(batch.revision, "a revision"))
                    if stopped.is_set():
                        return
                    for event in events[-1:]:  # the latest change is what counts
                        deleted = event.type == "DELETE"
                        record = None if deleted else self._record(event.kv)
                        if _owner(record) != _owner(last):  # not a renewal's rewrite
                            on_change(record)
                        last = record

        threading.Thread(target=watch, name=f"etcd-follow{self.key}", daemon=True).start()
        return stopped.set

    def check(self, *, wait: bool = False) -> None:
        """Raise :class:`~.lease.LeaseError` now if etcd is unreachable or the key holds garbage.

        With ``wait``, an unreachable etcd is retried every second (said once
        on stderr) until it answers.
        """
        said = False
        while True:
            try:
                self.read()
                return
            except EtcdUnavailableError as exc:
                if not wait:
                    raise EtcdUnavailableError(
                        f"{exc} (start etcd, or pass --wait-for-etcd to wait for it)"
                    ) from None
                if not said:
                    print(f"waiting for etcd: {exc}", file=sys.stderr, flush=True)
                    said = True
                time.sleep(1.0)

    def close(self) -> None:
        """Close the connections to etcd."""
        self.gateway.close()

    def _freed(self, revision: int, ttl: float) -> int | None:
        """Watch the held key for up to ``ttl / 10`` (at most 1 s): the revision deleting it."""
        wait = min(1.0, ttl / 10)
        deadline = time.monotonic() + wait
        try:
            for batch, events in self.gateway.watch(self._key, revision + 1, idle_timeout=wait):
                self._saw_events(events)
                if any(event.type == "DELETE" for event in events):
                    return etcd.number(batch.revision, "a revision")
                if time.monotonic() >= deadline:
                    break
        except LeaseError:
            time.sleep(wait)  # the next round reads again; no busy loop meanwhile
        return None

    def _previous_owner_stopped(self, ttl: float) -> bool:
        """Whether the last owner this standby saw has stopped serving by now.

        etcd before 3.4.28 (Debian 12 ships 3.4.23) can delete a live key: a
        leader that was stalled, once it runs again, still revokes the leases
        that expired by its stale clock, though the owner renewed them with the
        new leader meanwhile (etcd issues 12528 and 15247). The owner serves on
        until its own deadline, so a standby waits until the wall clock has
        passed the ``validUntil`` of the record it last saw (at most ``ttl``),
        in pauses of at most ``ttl / 10``. After a release, or an expiry at
        its time, that is already past.
        """
        left = self._seen_valid_until - time.time()
        if left <= 0:
            return True
        time.sleep(min(left, 1.0, ttl / 10))
        return False

    def _catch_up(self, now: int, ttl: float) -> None:
        """Replay the key's changes since the record last seen, up to revision ``now``.

        The last of them is the deletion, which carries the record it deleted:
        released (``validUntil`` 0) or not.
        """
        try:
            start, wait = self._seen_revision + 1, min(1.0, ttl / 10)
            for _, events in self.gateway.watch(self._key, start, idle_timeout=wait):
                self._saw_events(events)
                if events and etcd.number(events[-1].kv.mod_revision, "a revision") >= now:
                    return
        except LeaseError:  # compacted away, or etcd went: wait for what was seen
            return

    def _saw_events(self, events: list[etcd.WatchEvent]) -> None:
        for event in events:
            if event.type != "DELETE":
                self._saw(event.kv)
            elif event.prev_kv is not None:
                self._saw(event.prev_kv)

    def _saw(self, kv: etcd.KeyValue) -> None:
        """Remember the ``validUntil`` of an owner record this store read or watched.

        At most the record's ``ttl`` from when it was first seen: a renewal
        writes no later than that, and a record that claims more is not waited
        for longer.
        """
        revision = etcd.number(kv.mod_revision, "a revision")
        if revision == self._seen_revision:  # seen again (a replay): keep the first sighting
            return
        with contextlib.suppress(msgspec.DecodeError):  # garbage: nothing to wait for
            value = _decoder.decode(kv.value)
            latest = time.time() + value.ttl
            valid_until = value.valid_until if math.isfinite(value.valid_until) else latest
            self._seen_valid_until = min(valid_until, latest)
            self._seen_revision = revision

    def _value(
        self, instance_id: str, endpoint: str, term: int, ttl: float, valid_until: float
    ) -> bytes:
        return _encoder.encode(OwnerValue(instance_id, endpoint, term, ttl, valid_until))

    def _term_of(self, kv: etcd.KeyValue) -> int:
        return etcd.number(kv.create_revision, "a create revision")

    def _record(self, kv: etcd.KeyValue) -> LeaseRecord:
        try:
            value = _decoder.decode(kv.value)
        except msgspec.DecodeError as exc:
            raise EtcdError(f"etcd key {self.key} does not hold an owner record: {exc}") from None
        # The create revision is the term; the stored one may lag it for an instant.
        return LeaseRecord(
            instance_id=value.instance_id,
            endpoint=value.endpoint,
            term=self._term_of(kv),
            expires_at=utc_now() + timedelta(seconds=value.ttl),
        )

    def _forget(self, term: int) -> None:
        with self._lock:
            if self._term == term:
                self._lease = self._term = 0

    def _revoke(self, lease: int) -> None:
        etcd.revoke(self.gateway, lease)

    def _revoke_quietly(self, lease: int) -> None:
        with contextlib.suppress(LeaseError):  # it expires on its own
            etcd.revoke(self.gateway, lease)


def _owner(record: LeaseRecord | None) -> tuple[str, int] | None:
    return None if record is None else (record.instance_id, record.term)


def check_etcd_lease(url: str, *, wait: bool = False) -> str:
    """Check that the etcd lease at ``url`` can be read; returns ``url``.

    Raises ``ValueError`` for a malformed URL and :class:`~.lease.LeaseError`
    as :meth:`EtcdLeaseStore.check` does.
    """
    store = EtcdLeaseStore.from_url(url)
    try:
        store.check(wait=wait)
        return url
    finally:
        store.close()
