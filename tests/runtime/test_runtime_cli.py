"""``python -m transport serve | health | demo``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from transport.__main__ import main
from transport.cli.serve import load_backend
from transport.runtime.process import DaemonProcess

from ..eventually import eventually

pytestmark = pytest.mark.slow


def _health(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["health", "--runtime", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_serve_unfenced_and_probe_it(capsys: pytest.CaptureFixture[str]) -> None:
    with DaemonProcess("--listen", "127.0.0.1:0", "--instance-id", "") as daemon:
        eventually(lambda: len(daemon.lines) >= 2, "the second line", 5)
        assert daemon.lines[:2] == [
            f"listening on {daemon.endpoint}",
            "unfenced, backend none, lease -",
        ]
        status, out, _ = _health(capsys, daemon.endpoint)
        assert status == 0
        assert json.loads(out) == {"instanceId": "", "ready": True, "backend": "none"}
        # The standard grpc.health.v1 probe works against the daemon too.
        assert main(["health", daemon.endpoint]) == 0
        assert capsys.readouterr().out == "status: SERVING\n"
        assert daemon.stop() == 0
    assert daemon.lines[-1] == "stopped"


def test_health_by_lease_and_a_standby_that_is_not_ready(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lease = str(tmp_path / "lease")
    common = ("--lease", lease, "--lease-ttl", "1")
    with DaemonProcess(*common, "--instance-id", "owner-a") as owner:
        owner.wait_ready()
        with DaemonProcess(*common, "--instance-id", "owner-b") as standby:
            assert _health(capsys, "--lease", lease)[0] == 0
            status, out, _ = _health(capsys, standby.endpoint)
            assert status == 1
            assert json.loads(out) == {"instanceId": "owner-b", "ready": False, "backend": "none"}
            assert main(["health", standby.endpoint]) == 4  # grpc.health.v1: NOT_SERVING
            assert main(["health", owner.endpoint]) == 0
            eventually(lambda: "standby: waiting for the lease" in standby.lines, "standby", 5)


def test_health_of_nothing_is_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _health(capsys, "127.0.0.1:1", "--timeout", "2")
    assert (status, out) == (2, "") and "UNAVAILABLE" in err
    status, _, err = _health(capsys, "--lease", str(tmp_path / "none"))
    assert status == 2 and "no owner" in err


def test_serve_loads_a_backend_by_import_path(capsys: pytest.CaptureFixture[str]) -> None:
    backend = "transport.runtime.backend_none:NoneBackend"
    with DaemonProcess("--backend", backend, "--instance-id", "x") as daemon:
        status, out, _ = _health(capsys, daemon.endpoint)
        assert status == 0 and json.loads(out)["backend"] == backend


def test_serve_takes_a_default_wire_and_compression(capsys: pytest.CaptureFixture[str]) -> None:
    options = ("--instance-id", "", "--wire", "protobuf", "--compression", "gzip")
    with DaemonProcess(*options) as daemon:
        status, out, _ = _health(capsys, daemon.endpoint)
        assert status == 0 and json.loads(out)["ready"] is True


def test_serve_refuses_an_unknown_wire(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--wire", "xml"])
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_serve_refuses_an_unknown_backend() -> None:
    with pytest.raises(RuntimeError, match="did not start"):
        DaemonProcess("--backend", "llama")


def test_the_demo_tells_the_whole_story() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "transport", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for core in ("unary-unary", "stream-stream", "bad request (raw JSON)  -> INVALID_ARGUMENT"):
        assert core in out
    for story in (
        "Infer       -> float32",
        "Generate    -> ['the', 'owner'",
        "lease term 2",
        "-> ABORTED (x-owner-instance: owner-b)",
        "owner-a's handle on owner-b        -> NOT_FOUND",
        "client re-resolved owner owner-b",
        "owner story done",
    ):
        assert story in out


def test_serve_points_a_plain_service_at_run() -> None:
    with pytest.raises(SystemExit, match=r"not an owner-runtime backend .* transport run"):
        load_backend("tests.run_app:KVServer")
