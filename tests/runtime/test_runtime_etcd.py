"""Owners elected and fenced through real etcd: one member and a three-member cluster."""

from __future__ import annotations

import contextlib
import http.server
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import msgspec
import pytest

from tests.etcd_cluster import EtcdCluster, free_port, needs_etcd
from tests.eventually import eventually_async
from transport import Client as RpcClient
from transport import RpcError, StatusCode
from transport.health.service import ServingStatus, check
from transport.runtime import (
    Client,
    LeaseError,
    LeaseRecord,
    NoneBackend,
    OpenSessionRequest,
    Serving,
    dial_leader,
    dial_leader_async,
    etcd,
    running,
)
from transport.runtime.etcd_lease import EtcdLeaseStore, parse_etcd_url
from transport.runtime.process import DaemonProcess

from ..eventually import eventually

pytestmark = pytest.mark.slow  # a real etcd

ECHO = OpenSessionRequest(type="echo")
TTL = 2.0  # etcd's smallest lease with default timings


# --- the URL (no etcd needed)


def test_an_etcd_url_names_endpoints_and_key() -> None:
    assert parse_etcd_url("etcd://10.0.0.1:2379,etcd-b:2380,[::1]:2381/models/llama") == (
        [("10.0.0.1", 2379), ("etcd-b", 2380), ("::1", 2381)],
        "/models/llama",
    )
    assert parse_etcd_url("etcd://h:1/a/b/c")[1] == "/a/b/c"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://h:1/a/b", "must start with etcd://"),
        ("etcd:///a/b", "names no etcd endpoint"),
        ("etcd://h/a/b", "'h' is not HOST:PORT"),
        ("etcd://h:0/a/b", "no valid port"),
        ("etcd://h:99999/a/b", "no valid port"),
        ("etcd://h:1,/a/b", "'' is not HOST:PORT"),
        ("etcd://h:1/name", "must end in /PREFIX/NAME"),
        ("etcd://h:1", "must end in /PREFIX/NAME"),
        ("etcd://h:1/a//b", "must end in /PREFIX/NAME"),
        ("etcd://h:1/a/b?x=1", "must end in /PREFIX/NAME"),
    ],
)
def test_a_malformed_etcd_url_says_what_is_wrong(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("?", r"\?")):
        parse_etcd_url(url)


def test_serve_refuses_a_malformed_url_and_an_unreachable_etcd() -> None:
    def serve(lease: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "transport", "serve", "--lease", lease]
        return subprocess.run(command, capture_output=True, text=True, timeout=30)

    malformed = serve("etcd://127.0.0.1:1/only-a-name")
    assert malformed.returncode == 2 and "must end in /PREFIX/NAME" in malformed.stderr
    started = time.monotonic()
    unreachable = serve(f"etcd://127.0.0.1:{free_port()}/transport/model")
    assert unreachable.returncode == 2, unreachable.stderr
    assert "etcd did not answer" in unreachable.stderr
    assert "--wait-for-etcd" in unreachable.stderr
    assert time.monotonic() - started < 15


class _Member(http.server.BaseHTTPRequestHandler):
    """A fake etcd member answering every POST with the server's ``answer``."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = self.server.answer  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_member() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Member)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ((200, b'{"kvs": "nope"}'), "answered /v3/kv/range unexpectedly: Expected `array`"),
        ((200, b"[" * 100), "answered /v3/kv/range unexpectedly"),
        ((200, b" " * (2 << 20)), "answered /v3/kv/range with over 1 MiB"),
        ((400, b'{"message": "bad key", "code": 3}'), "refused /v3/kv/range: HTTP 400: bad key"),
        ((503, b"busy"), "etcd did not answer /v3/kv/range: 127.0.0.1:[0-9]+: HTTP 503: busy"),
    ],
)
def test_a_bad_answer_from_etcd_is_a_clear_lease_error(
    fake_member: http.server.ThreadingHTTPServer, answer: tuple[int, bytes], complaint: str
) -> None:
    fake_member.answer = answer  # type: ignore[attr-defined]
    store = _open(f"etcd://127.0.0.1:{fake_member.server_address[1]}/transport/model")
    with pytest.raises(LeaseError, match=complaint):
        store.read()


def test_numbers_from_etcd_are_checked(fake_member: http.server.ThreadingHTTPServer) -> None:
    fake_member.answer = (200, b'{"ID": "12abc", "TTL": "2"}')  # type: ignore[attr-defined]
    store = _open(f"etcd://127.0.0.1:{fake_member.server_address[1]}/transport/model")
    with pytest.raises(LeaseError, match="etcd answered a lease id '12abc', not a number"):
        etcd.grant(store.gateway, 2)


# --- the store on one member


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path_factory.mktemp("etcd-one"), size=1) as cluster:
        yield cluster


_opened: list[EtcdLeaseStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def _open(url: str) -> EtcdLeaseStore:
    store = EtcdLeaseStore.from_url(url)
    _opened.append(store)
    return store


def _store(cluster: EtcdCluster, name: str) -> EtcdLeaseStore:
    return _open(cluster.url(name))


@needs_etcd
def test_one_owner_at_a_time_and_each_term_larger(one: EtcdCluster) -> None:
    a, b = _store(one, "terms"), _store(one, "terms")
    assert a.read() is None
    held = a.acquire("owner-a", "127.0.0.1:1", TTL)
    assert held is not None and held.instance_id == "owner-a"
    started = time.monotonic()
    assert b.acquire("owner-b", "127.0.0.1:2", TTL) is None  # held: waits ttl/10, then no
    assert time.monotonic() - started < 3.0  # waits ttl/10 (0.2 s) plus the requests
    assert a.acquire("owner-a", "127.0.0.1:3", TTL) is None  # one id, one owner

    # The record at the key: JSON with the term, which is the key's create revision.
    kv, _, _ = etcd.get(a.gateway, b"/transport/terms")
    assert kv is not None and int(kv.lease) != 0
    stored = msgspec.json.decode(kv.value)
    assert stored["instanceId"] == "owner-a" and stored["endpoint"] == "127.0.0.1:1"
    assert stored["term"] == held.term == int(kv.create_revision)

    renewed = a.renew(held, TTL)
    assert renewed is not None and renewed.term == held.term
    a.release(held)
    assert b.read() is None  # revoking the lease deleted the key
    taken = b.acquire("owner-b", "127.0.0.1:2", TTL)
    assert taken is not None and taken.term > held.term
    assert a.renew(held, TTL) is None  # the old term is over
    now = a.read()
    assert now is not None and (now.instance_id, now.term) == ("owner-b", taken.term)
    b.release(taken)


@needs_etcd
def test_a_lease_etcd_dropped_is_not_renewed(one: EtcdCluster) -> None:
    store = _store(one, "dropped")
    held = store.acquire("owner-a", "127.0.0.1:1", TTL)
    assert held is not None
    kv, _, _ = etcd.get(store.gateway, b"/transport/dropped")
    assert kv is not None
    etcd.revoke(store.gateway, int(kv.lease))  # what expiry does
    assert store.renew(held, TTL) is None
    other = _store(one, "dropped").acquire("owner-b", "127.0.0.1:2", TTL)
    assert other is not None and other.term > held.term


@needs_etcd
def test_a_renewal_counts_only_if_the_write_confirms_it(
    one: EtcdCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(one, "confirm")
    held = store.acquire("owner-a", "127.0.0.1:1", TTL)
    assert held is not None
    real_rewrite = etcd.rewrite

    def write_in_another_term(*args: object, **kwargs: object) -> object:
        kept, header = real_rewrite(*args, **kwargs)  # type: ignore[arg-type]
        later = str(int(header.raft_term) + 1)
        return kept, msgspec.structs.replace(header, raft_term=later)

    monkeypatch.setattr(etcd, "rewrite", write_in_another_term)
    with pytest.raises(LeaseError, match="not confirmed"):
        store.renew(held, TTL)
    monkeypatch.undo()
    assert store.renew(held, TTL) is not None
    store.release(held)


def _take_over(standby: EtcdLeaseStore, bound: float) -> LeaseRecord:
    """Acquire as ``owner-b`` round after round, as the owner loop does; fail after ``bound`` s."""
    taken: list[LeaseRecord] = []

    def takes_over() -> bool:
        record = standby.acquire("owner-b", "127.0.0.1:2", TTL)
        taken.extend([record] if record is not None else [])
        return bool(taken)

    eventually(takes_over, "owner-b taking over", bound)
    return taken[0]


@needs_etcd
def test_a_standby_waits_out_a_live_owner_whose_key_etcd_deleted_early(one: EtcdCluster) -> None:
    # etcd before 3.4.28 lets a leader that was stalled revoke a lease the owner has
    # renewed with the new leader since (etcd issues 12528, 15247): the key goes while
    # the owner serves on until its own deadline. Revoking the lease by hand does the same.
    a, b = _store(one, "early"), _store(one, "early")
    held = a.acquire("owner-a", "127.0.0.1:1", TTL)
    assert held is not None and a.renew(held, TTL) is not None
    assert b.acquire("owner-b", "127.0.0.1:2", TTL) is None  # b has seen the record
    kv, _, _ = etcd.get(a.gateway, b"/transport/early")
    assert kv is not None
    valid_until = msgspec.json.decode(kv.value)["validUntil"]
    etcd.revoke(a.gateway, int(kv.lease))
    taken = _take_over(b, 10)
    assert time.time() >= valid_until  # not before owner-a's deadline had passed
    b.release(taken)


@needs_etcd
def test_a_standby_waits_at_most_the_records_ttl(one: EtcdCluster) -> None:
    # A record that claims to be valid for a year is waited for one TTL, not a year.
    b = _store(one, "far")
    lease, _ = etcd.grant(b.gateway, 5)
    record = {"instanceId": "x", "endpoint": "h:1", "term": 1, "ttl": TTL, "validUntil": 4e9}
    assert etcd.create(b.gateway, b"/transport/far", msgspec.json.encode(record), lease)[0]
    assert b.acquire("owner-b", "127.0.0.1:2", TTL) is None  # b has seen the record
    etcd.revoke(b.gateway, lease)
    b.release(_take_over(b, TTL + 5))  # within the record's TTL (and the requests)


@needs_etcd
def test_a_standby_takes_a_released_key_at_once(one: EtcdCluster) -> None:
    a, b = _store(one, "released"), _store(one, "released")
    held = a.acquire("owner-a", "127.0.0.1:1", TTL)
    assert held is not None
    assert b.acquire("owner-b", "127.0.0.1:2", TTL) is None  # b has seen the live record
    a.release(held)  # validUntil 0, then the revoke: b need not wait
    started = time.monotonic()
    taken = b.acquire("owner-b", "127.0.0.1:2", TTL)
    assert taken is not None and time.monotonic() - started < TTL / 2
    b.release(taken)


@needs_etcd
def test_a_malformed_record_is_named(one: EtcdCluster) -> None:
    store = _store(one, "garbage")
    lease, _ = etcd.grant(store.gateway, 5)
    assert etcd.create(store.gateway, b"/transport/garbage", b"{not json", lease)[0]
    with pytest.raises(LeaseError, match="/transport/garbage does not hold an owner record"):
        store.read()
    health = subprocess.run(
        [sys.executable, "-m", "transport", "health", "--lease", one.url("garbage")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert health.returncode == 2 and "does not hold an owner record" in health.stderr
    etcd.revoke(store.gateway, lease)


@needs_etcd
def test_requests_fail_over_to_a_member_that_answers(one: EtcdCluster) -> None:
    dead = f"127.0.0.1:{free_port()}"
    store = _open(f"etcd://{dead},{one.endpoints}/transport/failover")
    held = store.acquire("owner-a", "127.0.0.1:1", TTL)
    assert held is not None and store.renew(held, TTL) is not None
    store.release(held)
    nobody = _open(f"etcd://{dead}/transport/failover")
    with pytest.raises(etcd.EtcdUnavailableError, match=f"etcd did not answer.*{dead}"):
        nobody.read()


# --- daemons on a three-member cluster


@dataclass
class Answer:
    """One fenced probe that succeeded: which daemon, sent and answered when."""

    daemon: str
    sent: float
    answered: float


class Prober:
    """Probes every daemon with fenced calls, continuously, on a thread."""

    def __init__(self, daemons: list[DaemonProcess]) -> None:
        self.clients = [
            (daemon.name, Client(daemon.endpoint, daemon.name, timeout=0.5)) for daemon in daemons
        ]
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, client in self.clients:
                sent = time.monotonic()
                try:
                    client.describe(ECHO, timeout=0.5)
                except RpcError:
                    continue
                self.answers.append(Answer(name, sent, time.monotonic()))

    def wait_for_an_answer(self, daemon: DaemonProcess) -> None:
        """Return once ``daemon`` has answered a probe."""
        eventually(
            lambda: any(answer.daemon == daemon.name for answer in self.answers),
            f"a probe answered by {daemon.name}",
            10,
        )

    def stop(self) -> list[Answer]:
        """Stop probing; the answers, checked for two owners at once."""
        self._stop.set()
        self._thread.join(timeout=10)
        for _, client in self.clients:
            client.close()
        assert_one_owner_at_a_time(self.answers)
        return self.answers


def assert_one_owner_at_a_time(answers: list[Answer]) -> None:
    """No two daemons served at the same time, judged by the time window of each answer.

    An answer shows that its daemon served at some instant between ``sent`` and
    ``answered``, and each daemon owns one stretch of time (none of these tests
    gives a lease back to an earlier owner). So daemon X owned at least from
    its earliest ``answered`` to its latest ``sent``. If X answered a probe sent
    after Y had answered one, and Y one sent after X had answered one, their
    stretches overlap whichever owned first: two owners at once. Windows that
    overlap without that order could be a clean handover, and pass.
    """
    first_answered: dict[str, Answer] = {}
    last_sent: dict[str, Answer] = {}
    for answer in answers:
        if answer.daemon not in first_answered or (
            answer.answered < first_answered[answer.daemon].answered
        ):
            first_answered[answer.daemon] = answer
        if answer.daemon not in last_sent or answer.sent > last_sent[answer.daemon].sent:
            last_sent[answer.daemon] = answer
    for x, y in itertools.combinations(sorted(first_answered), 2):
        if (
            last_sent[x].sent > first_answered[y].answered
            and last_sent[y].sent > first_answered[x].answered
        ):
            raise AssertionError(
                f"owners overlapped: {x} answered {first_answered[x]} and {last_sent[x]}, "
                f"{y} answered {first_answered[y]} and {last_sent[y]}"
            )


def _daemons(url: str, count: int = 3) -> list[DaemonProcess]:
    def start(index: int) -> DaemonProcess:
        args = ("--listen", "127.0.0.1:0", "--lease", url, "--lease-ttl", str(TTL))
        return DaemonProcess(*args, "--instance-id", f"d{index}", name=f"d{index}")

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


def _owner(daemons: list[DaemonProcess], timeout: float = 15) -> DaemonProcess:
    """The one daemon that answers ready (waits until one round of probes finds just one).

    The daemons are probed one after another, so two ready answers in a round
    may be a handover between the probes: probe again. Two owners at once
    fail the test (:func:`assert_one_owner_at_a_time`).
    """
    found: list[DaemonProcess] = []
    answers: list[Answer] = []

    def one_ready() -> bool:
        ready = []
        for daemon in daemons:
            sent = time.monotonic()
            status = daemon.health(timeout=0.5)
            if status is not None and status.ready:
                ready.append(daemon)
                answers.append(Answer(daemon.name, sent, time.monotonic()))
        assert_one_owner_at_a_time(answers)
        found[:] = ready
        return len(ready) == 1

    eventually(one_ready, "one owner", timeout)
    return found[0]


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path_factory.mktemp("etcd-three"), size=3) as cluster:
        yield cluster


@dataclass
class Fleet:
    """Three daemons on one etcd lease."""

    url: str
    daemons: list[DaemonProcess]

    def store(self) -> EtcdLeaseStore:
        """A store on the lease, to read the owner record (closed after the test)."""
        return _open(self.url)


@pytest.fixture
def fleet(three: EtcdCluster, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    url = three.url(request.node.name.replace("_", "-"))
    started = _daemons(url)
    try:
        yield Fleet(url, started)
    finally:
        for daemon in started:
            daemon.close()


@needs_etcd
@pytest.mark.slow
def test_three_daemons_elect_one_owner_and_probes_follow(fleet: Fleet) -> None:
    owner = _owner(fleet.daemons)
    record = fleet.store().read()
    assert record is not None
    assert (record.instance_id, record.endpoint) == (owner.name, owner.endpoint)
    for daemon in fleet.daemons:
        expected = ServingStatus.SERVING if daemon is owner else ServingStatus.NOT_SERVING
        with RpcClient.connect(daemon.endpoint, timeout=5) as probe:
            assert check(probe.channel) is expected
        if daemon is not owner:
            assert daemon.wait_ready(ready=False).instance_id == daemon.name
    eventually(lambda: f"owner: serving, term {record.term}" in owner.lines, "the report", 5)
    health = subprocess.run(
        [sys.executable, "-m", "transport", "health", "--lease", fleet.url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert health.returncode == 0, health.stderr
    assert msgspec.json.decode(health.stdout)["instanceId"] == owner.name


def _fenced_refusal(daemon: DaemonProcess) -> StatusCode:
    with Client(daemon.endpoint, daemon.name, timeout=5) as own:
        with pytest.raises(RpcError) as caught:
            own.describe(ECHO)
        return caught.value.code


@needs_etcd
@pytest.mark.slow
def test_a_killed_owner_is_replaced_in_a_larger_term(fleet: Fleet) -> None:
    prober = Prober(fleet.daemons)
    owner = _owner(fleet.daemons)
    before = fleet.store().read()
    assert before is not None and before.instance_id == owner.name
    prober.wait_for_an_answer(owner)  # on a loaded machine its first round may come late
    owner.kill()
    killed = time.monotonic()
    rest = [d for d in fleet.daemons if d is not owner]
    successor = _owner(rest)
    print(f"takeover after SIGKILL: {time.monotonic() - killed:.2f} s (lease TTL {TTL} s)")
    after = fleet.store().read()
    assert after is not None and after.instance_id == successor.name
    assert after.term > before.term
    assert {a.daemon for a in prober.stop()} == {owner.name, successor.name}


@needs_etcd
@pytest.mark.slow
def test_a_paused_owner_wakes_up_fenced(fleet: Fleet) -> None:
    prober = Prober(fleet.daemons)
    owner = _owner(fleet.daemons)
    before = fleet.store().read()
    assert before is not None
    owner.pause()
    try:
        successor = _owner([d for d in fleet.daemons if d is not owner])
    finally:
        owner.resume()
    # Awake again, the old owner refuses every fenced call: its deadline has passed.
    assert _fenced_refusal(owner) is StatusCode.UNAVAILABLE
    assert owner.wait_ready(ready=False).instance_id == owner.name
    after = fleet.store().read()
    assert after is not None and after.instance_id == successor.name and after.term > before.term
    time.sleep(0.5)  # keep probing the woken owner for a while
    assert_one_owner_at_a_time(prober.stop())
    assert _fenced_refusal(owner) is StatusCode.UNAVAILABLE


@needs_etcd
@pytest.mark.slow
def test_a_graceful_stop_hands_over_at_once(fleet: Fleet) -> None:
    owner = _owner(fleet.daemons)
    before = fleet.store().read()
    assert before is not None
    client = dial_leader(lease=fleet.url, timeout=5)
    assert client.expected_owner == owner.name
    prober = Prober(fleet.daemons)
    stopping = time.monotonic()
    assert owner.stop() == 0
    # The daemon revoked its etcd lease before exiting: the key is gone (or already
    # a successor's), not left to expire in TTL seconds.
    right_after = fleet.store().read()
    assert right_after is None or right_after.instance_id != owner.name
    successor = _owner([d for d in fleet.daemons if d is not owner], timeout=5)
    print(f"takeover after a graceful stop: {time.monotonic() - stopping:.2f} s")
    after = fleet.store().read()
    assert after is not None and after.term > before.term
    # The client watched the key: with neither retry nor resolve() it moves to the successor.
    eventually(lambda: _answers(client), "the client following the new owner", 5)
    assert (client.expected_owner, client.endpoint) == (successor.name, successor.endpoint)
    client.close()
    prober.stop()
    assert "stopped" in owner.lines


def _answers(client: Client) -> bool:
    try:
        client.describe(ECHO)
    except RpcError:
        return False
    return True


@needs_etcd
@pytest.mark.slow
def test_renewals_move_to_another_member_when_one_stops_answering(three: EtcdCluster) -> None:
    # A follower, first in the URL (the member asked first). Pausing the leader
    # would make renewals wait for an election as well, which under load can
    # outlast the 2 s lease: the test with the paused leader is further down.
    leader = three.leader()
    paused = next(member for index, member in enumerate(three.members) if index != leader)
    order = [paused, *(member for member in three.members if member is not paused)]
    store = _open(f"etcd://{','.join(m.endpoint for m in order)}/transport/member-paused")
    # A lease long enough for the 1 s timeout on the paused member on a loaded machine:
    # this test is about where renewals go, not how fast (the takeover tests are).
    ttl = 3 * TTL
    held = store.acquire("owner-a", "127.0.0.1:1", ttl)
    assert held is not None
    paused.pause()
    try:
        renewed: list[object] = []

        def renews() -> bool:
            with contextlib.suppress(LeaseError):
                renewed.append(store.renew(held, ttl))
            return bool(renewed)

        eventually(renews, "a renewal through another member", 15)
        assert renewed[0] is not None  # the lease survived: renewed, not lost
        assert store.gateway.member != paused.endpoint
    finally:
        paused.resume()
    three.wait_healthy()
    store.release(held)


@needs_etcd
@pytest.mark.slow
def test_no_two_owners_while_the_etcd_leader_is_paused_then_killed(
    three: EtcdCluster, fleet: Fleet
) -> None:
    _owner(fleet.daemons)
    prober = Prober(fleet.daemons)
    leader = three.leader()
    three.members[leader].pause()
    try:
        # The other two elect a leader; the owner's requests fail over to them.
        eventually(lambda: three.leader() != leader, "a new etcd leader", 20)
        _owner(fleet.daemons)
    finally:
        three.members[leader].resume()
    three.wait_healthy()
    leader = three.leader()
    three.members[leader].kill()
    try:
        eventually(lambda: three.leader() != leader, "a new etcd leader", 20)
        _owner(fleet.daemons)
    finally:
        three.restart(leader)
        three.wait_healthy()
    owner = _owner(fleet.daemons)
    prober.wait_for_an_answer(owner)
    prober.stop()  # and no two owners answered at once


@needs_etcd
@pytest.mark.slow
def test_an_owner_stops_serving_while_etcd_is_down_and_serves_again(tmp_path: Path) -> None:
    with EtcdCluster(tmp_path, size=1) as cluster:
        url = cluster.url("down-and-back")
        first, second = _daemons(url, 2)
        with first, second:
            owner = _owner([first, second])
            record = _open(url).read()
            before = time.monotonic()
            cluster.members[0].kill()
            # Renewals fail: the owner stops serving at its own deadline (< TTL).
            owner.wait_ready(ready=False, timeout=TTL + 5)
            print(f"owner not serving {time.monotonic() - before:.2f} s after etcd went down")
            assert _fenced_refusal(owner) is StatusCode.UNAVAILABLE
            with ThreadPoolExecutor(1) as pool:
                # A daemon started meanwhile waits for etcd when asked to.
                args = ("--listen", "127.0.0.1:0", "--lease", url, "--lease-ttl", str(TTL))
                waiting = pool.submit(
                    DaemonProcess, *args, "--wait-for-etcd", "--instance-id", "late", name="late"
                )
                cluster.restart(0)
                cluster.wait_healthy()
                late = waiting.result(timeout=30)
            with late:
                # etcd kept the lease (a restart only extends leases): the same owner again.
                assert _owner([first, second, late]) is owner
                again = _open(url).read()
                assert again is not None and record is not None
                assert again.same_term(record) and again.endpoint == record.endpoint
                assert late.wait_ready(ready=False).instance_id == "late"


@needs_etcd
@pytest.mark.slow
@pytest.mark.anyio
async def test_the_python_api_takes_an_etcd_url_and_clients_follow(three: EtcdCluster) -> None:
    url = three.url("python-api")

    def daemon(instance_id: str) -> contextlib.AbstractAsyncContextManager[Serving]:
        return running(NoneBackend(), instance_id=instance_id, lease=url, lease_ttl=TTL)

    async with AsyncExitStack() as owner_a:
        a = await owner_a.enter_async_context(daemon("owner-a"))
        await eventually_async(lambda: a.server.holds_lease, "owner-a holds the lease")
        async with (
            daemon("owner-b") as b,
            await dial_leader_async(lease=url, timeout=5) as client,
        ):
            assert (client.expected_owner, client.endpoint) == ("owner-a", a.endpoint)
            await owner_a.aclose()  # revokes the lease: owner-b takes the key at once
            await eventually_async(lambda: b.server.holds_lease, "owner-b takes over", 5)
            with anyio.fail_after(5):
                while client.expected_owner != "owner-b":
                    with contextlib.suppress(RpcError):
                        await client.describe(ECHO)  # no retry: the watch re-targets
                    await anyio.sleep(0.01)
            assert client.endpoint == b.endpoint
            assert (await client.describe(ECHO)).type == "echo"


@needs_etcd
@pytest.mark.slow
def test_the_demo_tells_the_owner_story_on_etcd() -> None:
    command = [sys.executable, "-m", "transport", "demo", "--etcd"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for story in (
        "etcd key /transport/model: owner-a at 127.0.0.1:",
        "Infer       -> float32",
        "[owner-b] owner: serving, term",
        "-> ABORTED (x-owner-instance: owner-b)",
        "owner-a's handle on owner-b        -> NOT_FOUND",
        "client followed the key to owner owner-b",
        "etcd key /transport/model: none (no owner)",
        "owner story done",
    ):
        assert story in out
    assert "unary-unary" not in out  # the owner story only


@needs_etcd
@pytest.mark.slow
def test_the_takeover_benchmark_runs() -> None:
    command = [sys.executable, "benchmarks/takeover_etcd.py", "--rounds", "1"]
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "after SIGKILL: median" in done.stdout and "after SIGTERM: median" in done.stdout
