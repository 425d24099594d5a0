"""``python -m transport demo --owner``: the owner story on loopback, with real processes.

An owner and a standby daemon on one lease file; a fenced client with a
session (numpy inference, streamed generation); the owner killed; the standby
taking over in the next term; the stale client refused (ABORTED), the old
handle refused (NOT_FOUND); the client re-resolving and carrying on.
``--etcd`` tells the same story with the lease on a three-member etcd cluster
the demo starts on loopback.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import RpcError
from ..runtime.client import dial_leader
from ..runtime.contract import OpenSessionRequest
from ..runtime.etcd_lease import is_etcd_url
from ..runtime.etcd_local import EtcdCluster
from ..runtime.fence import OWNER_METADATA_KEY
from ..runtime.lease import LeaseStore, file_leases_work
from ..runtime.lease_url import open_lease
from ..runtime.process import DaemonProcess

__all__ = ["run"]

_TTL = "1.0"
_ETCD_TTL = "2"  # etcd's smallest lease with default timings
_print_lock = threading.Lock()


def _say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def _refused(what: str, call: Callable[[], object]) -> None:
    try:
        call()
    except RpcError as exc:
        owner = dict(exc.trailing_metadata).get(OWNER_METADATA_KEY, "-")
        owner = owner.decode() if isinstance(owner, bytes) else owner
        _say(f"  {what:<34} -> {exc.code.name} (x-owner-instance: {owner})")
        return
    raise AssertionError(f"{what} was not refused")


def run(*, etcd: bool = False) -> None:
    """Tell the whole owner story, printing each step (on etcd with ``etcd=True``)."""
    if not etcd and not file_leases_work():
        raise SystemExit(
            "demo: the owner story's lease file needs fcntl (POSIX) or msvcrt (Windows), and "
            "this Python has neither: run demo --core, or demo --etcd"
        )
    with tempfile.TemporaryDirectory(prefix="transport-demo-") as directory:
        if not etcd:
            _say(
                "owner story: two daemons on one lease file, the owner dies, the standby takes over"
            )
            lease = Path(directory) / "model.lease"
            _story(str(lease), _TTL, lambda store: f"lease file: {lease.read_text().strip()}")
            return
        _say("owner story on etcd: two daemons, the lease in a three-member etcd cluster")
        with EtcdCluster(Path(directory), size=3) as cluster:
            _say(f"etcd members at {cluster.endpoints}")
            _story(cluster.url("model"), _ETCD_TTL, _show_etcd)


def _show_etcd(store: LeaseStore) -> str:
    record = store.read()
    if record is None:
        return "etcd key /transport/model: none (no owner)"
    return (
        f"etcd key /transport/model: {record.instance_id} at {record.endpoint}, term "
        f"{record.term} (the key's create revision)"
    )


def _story(lease: str, ttl: str, show: Callable[[LeaseStore], str]) -> None:
    store: LeaseStore = open_lease(lease)
    common = ("--listen", "127.0.0.1:0", "--lease", lease, "--lease-ttl", ttl)
    with (
        DaemonProcess(*common, "--instance-id", "owner-a", name="owner-a", echo=_say) as a,
        DaemonProcess(*common, "--instance-id", "owner-b", name="owner-b", echo=_say) as b,
    ):
        a.wait_ready()
        _say(show(store))
        b_health = b.health()
        _say(f"standby health: {b_health}")

        client = dial_leader(lease=lease, timeout=5.0)
        _say(f"client resolved owner {client.expected_owner} at {client.endpoint}")
        echo = OpenSessionRequest(type="echo", path="models/echo")
        session = client.open_session(echo)
        info = session.info
        _say(f"  OpenSession -> handle {session.handle[:20]}..., {info.type} by {info.backend}")
        outputs = session.infer({"pixels": np.arange(6, dtype=np.float32).reshape(2, 3)})
        _say(f"  Infer       -> {outputs['pixels'].dtype} {outputs['pixels'].tolist()}")
        pieces = list(session.generate("the owner serves this stream word by word", 5))
        _say(f"  Generate    -> {pieces}")

        _say(f"SIGKILL owner-a (pid {a.pid}); owner-b waits for the lease to expire")
        killed = time.monotonic()
        a.kill()
        took_over = b.wait_ready(timeout=10.0)
        took = time.monotonic() - killed
        record = store.read()
        assert record is not None
        _say(f"owner-b took over: {took_over}, lease term {record.term} (after {took:.1f} s)")

        stale = dial_leader(b.endpoint, "owner-a", timeout=5.0)
        _refused("stale client (expects owner-a) at b", lambda: stale.describe(echo))
        stale.close()
        if is_etcd_url(lease):
            # The client watches the key: its next call goes to owner-b by itself.
            _refused("owner-a's handle on owner-b", lambda: session.infer({"x": np.zeros(1)}))
            _say(f"client followed the key to owner {client.expected_owner} at {client.endpoint}")
        else:
            _refused("old client, owner-a's endpoint", lambda: session.infer({"x": np.zeros(1)}))
            client.resolve()
            _say(f"client re-resolved owner {client.expected_owner} at {client.endpoint}")
            _refused("owner-a's handle on owner-b", lambda: session.infer({"x": np.zeros(1)}))
        fresh = client.open_session(echo, retry=True)
        doubled = fresh.infer({"x": np.array([1.5, 2.5])})["x"] * 2
        _say(f"  new session on {client.expected_owner}: Infer -> {doubled.tolist()} (x2)")
        _say(f"  Generate    -> {list(fresh.generate('carrying on after takeover'))}")
        fresh.close()
        client.close()

        _say("SIGTERM owner-b: graceful stop releases the lease")
        stopping = time.monotonic()
        b.stop()
        _say(f"owner-b stopped in {time.monotonic() - stopping:.2f} s")
        _say(show(store))
    store.close()
    _say("owner story done")
