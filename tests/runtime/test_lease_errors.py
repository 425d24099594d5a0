"""A lease file that cannot be written, holds garbage, or reaches the last term."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest

from transport.__main__ import main
from transport.runtime.fence import Fence
from transport.runtime.lease import MAX_TERM, FileLeaseStore, LeaseError, LeaseRecord
from transport.runtime.owner import Owner

pytestmark = pytest.mark.slow  # daemons in subprocesses

PAST = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _record(term: int) -> bytes:
    return json.dumps(
        {"instanceId": "a", "endpoint": "e", "term": term, "expiresAt": PAST.isoformat()}
    ).encode()


@pytest.mark.parametrize("where", ["under a file", "missing directory"])
def test_serve_with_a_lease_it_cannot_write_exits_at_once(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    lease = blocker / "lease" if where == "under a file" else tmp_path / "absent" / "lease"
    done = subprocess.run(
        [sys.executable, "-m", "transport", "serve", "--lease", str(lease), "--instance-id", "a"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert done.stderr.startswith("serve: cannot open lease lock")
    assert str(lease) in done.stderr and "listening" not in done.stdout


def test_a_writable_lease_passes_the_check(tmp_path: Path) -> None:
    store = FileLeaseStore(tmp_path / "lease")
    store.check()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lease.lock"]


class CountingStore(FileLeaseStore):
    """A file store that counts its acquire attempts."""

    attempts = 0

    def acquire(self, instance_id: str, endpoint: str, ttl: float) -> LeaseRecord | None:
        self.attempts += 1
        return super().acquire(instance_id, endpoint, ttl)


@pytest.mark.anyio
async def test_a_garbage_lease_is_reported_once_then_rate_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "lease"
    path.write_bytes(b"\x00garbage{")
    store = CountingStore(path)
    owner = Owner(store, Fence("a", holding=False), "e", ttl=0.2)  # polls every 20 ms
    with caplog.at_level(logging.WARNING, logger="transport.runtime"):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(owner.run)
            with anyio.fail_after(10):
                while store.attempts < 6:
                    await anyio.sleep(0.01)
            owner.stop()
    reports = [r.getMessage() for r in caplog.records if "lease store error" in r.getMessage()]
    assert len(reports) == 1
    assert f"lease file {path} is not a lease record" in reports[0]
    assert not owner.fence.holds_lease


def test_health_by_a_garbage_lease_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lease"
    path.write_bytes(b"not json")
    assert main(["health", "--lease", str(path)]) == 2
    assert f"lease file {path} is not a lease record" in capsys.readouterr().err


def test_the_term_never_passes_int64(tmp_path: Path) -> None:
    path = tmp_path / "lease"
    store = FileLeaseStore(path)
    path.write_bytes(_record(MAX_TERM - 1))
    taken = store.acquire("b", "e", 10.0)
    assert taken is not None and taken.term == MAX_TERM
    path.write_bytes(_record(MAX_TERM))
    with pytest.raises(LeaseError, match=f"reached {MAX_TERM}: reset the lease"):
        store.acquire("b", "e", 10.0)
    path.write_bytes(_record(MAX_TERM + 1))
    with pytest.raises(LeaseError, match="is not a lease record"):
        store.read()
    path.write_bytes(_record(-1))
    with pytest.raises(LeaseError, match="is not a lease record"):
        store.read()
