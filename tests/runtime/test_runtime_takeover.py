"""Takeover with real processes: an owner and a standby on one lease file."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from transport import RpcError, StatusCode
from transport.runtime import OWNER_METADATA_KEY, FileLeaseStore, OpenSessionRequest, dial_leader
from transport.runtime.lease import utc_now
from transport.runtime.process import DaemonProcess, pause
from transport.runtime.wire import CloseSessionRequest, Runtime

from ..eventually import eventually

pytestmark = pytest.mark.slow

ECHO = OpenSessionRequest(type="echo")
TTL = "1.0"


def _daemons(lease: Path) -> tuple[DaemonProcess, DaemonProcess]:
    common = ("--listen", "127.0.0.1:0", "--lease", str(lease), "--lease-ttl", TTL)
    a = DaemonProcess(*common, "--instance-id", "owner-a", name="owner-a")
    try:
        a.wait_ready()  # owner-a owns the lease before owner-b starts
        b = DaemonProcess(*common, "--instance-id", "owner-b", name="owner-b")
    except BaseException:
        a.close()
        raise
    return a, b


def _refusal(call: Callable[[], Any]) -> tuple[StatusCode, str | bytes | None]:
    with pytest.raises(RpcError) as caught:
        call()
    return caught.value.code, dict(caught.value.trailing_metadata).get(OWNER_METADATA_KEY)


def test_a_standby_takes_over_when_the_owner_is_killed(tmp_path: Path) -> None:
    lease = tmp_path / "model.lease"
    store = FileLeaseStore(lease)
    a, b = _daemons(lease)
    with a, b:
        standby = b.wait_ready(ready=False)
        assert (standby.instance_id, standby.ready) == ("owner-b", False)
        client = dial_leader(lease=lease, timeout=5)
        retrying = dial_leader(lease=lease, timeout=5)
        assert (client.endpoint, client.expected_owner) == (a.endpoint, "owner-a")
        session = client.open_session(ECHO)
        assert session.infer({"x": np.arange(3)})["x"].tolist() == [0, 1, 2]
        before = store.read()
        assert before is not None and (before.instance_id, before.term) == ("owner-a", 1)

        a.kill()
        # A call marked safe to retry rides out the takeover on its own.
        fresh = retrying.open_session(ECHO, retry=True)
        assert retrying.expected_owner == "owner-b" and fresh.info.type == "echo"
        assert b.wait_ready().instance_id == "owner-b"
        after = store.read()
        assert after is not None
        assert (after.instance_id, after.endpoint, after.term) == ("owner-b", b.endpoint, 2)

        # A client still fenced on owner-a that reaches owner-b is refused, told who serves.
        with dial_leader(b.endpoint, "owner-a", timeout=5) as stale:
            assert _refusal(lambda: stale.describe(ECHO)) == (StatusCode.ABORTED, "owner-b")
            assert _refusal(lambda: stale.open_session(ECHO)) == (StatusCode.ABORTED, "owner-b")
        # The client aimed at the dead owner's endpoint cannot get through either.
        assert _refusal(lambda: client.describe(ECHO))[0] is StatusCode.UNAVAILABLE

        assert client.resolve().term == 2
        assert (client.endpoint, client.expected_owner) == (b.endpoint, "owner-b")
        # owner-a's handle means nothing to owner-b.
        assert _refusal(lambda: session.infer({"x": np.zeros(1)}))[0] is StatusCode.NOT_FOUND
        assert _refusal(lambda: list(session.generate("a b")))[0] is StatusCode.NOT_FOUND
        with client.open_session(ECHO) as again:
            assert list(again.generate("carrying on", 5)) == ["carrying", "on"]
        fresh.close()
        client.close()
        retrying.close()

        assert b.stop() == 0  # graceful: releases the lease
        released = store.read()
        assert released is not None and released.term == 2
        assert released.expires_at <= utc_now()
        assert "owner: serving, term 2" in b.lines


def _pause_outside_the_lock(daemon: DaemonProcess, lock: Path) -> None:
    """SIGSTOP ``daemon`` at a moment it does not hold the lease file's lock.

    (Stopped inside its few-millisecond critical section, it would keep the
    standby out until it resumes: safe, but not the case this test is about.)
    """
    for _ in range(100):
        daemon.pause()
        with open(lock) as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                daemon.resume()
                continue
            fcntl.flock(file, fcntl.LOCK_UN)
            return
    raise AssertionError("the lease lock never came free")


def test_a_paused_owner_refuses_every_fenced_call_after_a_takeover(tmp_path: Path) -> None:
    lease = tmp_path / "model.lease"
    a, b = _daemons(lease)
    with a, b:
        b.wait_ready(ready=False)
        client = dial_leader(lease=lease, timeout=5)
        session = client.open_session(ECHO)
        wrong_owner = dial_leader(a.endpoint, "owner-b", timeout=5)

        _pause_outside_the_lock(a, lease.with_name(lease.name + ".lock"))
        b.wait_ready(timeout=10)
        a.resume()

        # From its first instruction after SIGCONT, owner-a's own clock says its lease
        # may have lapsed: every fenced call is refused, and nothing is done.
        fenced_calls: list[Callable[[], Any]] = [
            lambda: client.describe(ECHO),
            lambda: client.open_session(ECHO),
            lambda: session.infer({"x": np.zeros(1)}),
            lambda: list(session.generate("a b")),
            lambda: client._call(Runtime.CloseSession, CloseSessionRequest(handle=session.handle)),
        ]
        for call in fenced_calls:
            assert _refusal(call) == (StatusCode.UNAVAILABLE, "owner-a")
        assert _refusal(lambda: wrong_owner.describe(ECHO)) == (StatusCode.ABORTED, "owner-a")
        health = a.health()
        assert health is not None and (health.instance_id, health.ready) == ("owner-a", False)

        # Once its loop has seen owner-b's record, owner-a stays a standby.
        eventually(lambda: any("not serving" in line for line in a.lines), "owner-a noticing", 5)
        for call in fenced_calls:
            assert _refusal(call)[0] is StatusCode.UNAVAILABLE
        record = FileLeaseStore(lease).read()
        assert record is not None and (record.instance_id, record.term) == ("owner-b", 2)
        health = a.health()
        assert health is not None and not health.ready
        wrong_owner.close()
        client.close()


_BUSY_THREADS = """
import threading, time
def spin():
    while True:
        pass
for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
print("busy", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread states in /proc")
def test_pause_returns_once_every_thread_of_a_busy_process_has_stopped() -> None:
    # A test that pauses a member or a daemon and then expects it not to answer
    # must not race the signal: kill() returns before the threads stop.
    with subprocess.Popen([sys.executable, "-c", _BUSY_THREADS], stdout=subprocess.PIPE) as busy:
        try:
            assert busy.stdout is not None and busy.stdout.readline() == b"busy\n"
            pause(busy)
            tasks = list(Path(f"/proc/{busy.pid}/task").iterdir())
            states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks]
            assert len(states) == 5 and set(states) == {"T"}, states
        finally:
            busy.kill()
