"""The benchmark suite keeps working: a tiny run end to end (numbers are never checked)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"scenario", "variant", "metric", "value", "unit", "ratio_to_floor"}
SCENARIOS = {
    "unary_small",
    "unary_concurrent",
    "stream_small",
    "stream_short",
    "stream_trickle",
    "ndarray",
    "session_infer",
    "scale",
}


def _run(*arguments: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` in the checkout; fails the test with its stderr if it fails."""
    done = subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.slow
def test_the_tiny_suite_runs_and_writes_its_rows(tmp_path: Path) -> None:
    done = _run("benchmarks/run.py", "--tiny", "--out", str(tmp_path), timeout=180)
    rows = json.loads((tmp_path / "latest.json").read_text())
    assert rows and all(set(row) == KEYS for row in rows)
    assert {row["scenario"] for row in rows} == SCENARIOS
    for scenario in SCENARIOS:
        floors = [r for r in rows if r["scenario"] == scenario and r["variant"] == "floor"]
        assert floors and all(r["ratio_to_floor"] == 1.0 for r in floors)
        assert any(r["variant"].startswith("transport") for r in rows if r["scenario"] == scenario)
    assert "| scenario | variant | metric | value | unit | spread | x floor |" in done.stdout
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["mode"] == "tiny" and len(run["load_before"]) == 3
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "latest.png").stat().st_size > 0
    else:
        assert "no chart" in done.stdout


@pytest.mark.slow
def test_the_workers_benchmark_runs() -> None:
    done = _run("benchmarks/workers.py", "--tiny", timeout=180)
    assert "| workers | calls/s (median) | x 1 worker |" in done.stdout
    assert "| 2 | " in done.stdout


@pytest.mark.slow
def test_the_codec_benchmark_runs() -> None:
    done = _run("benchmarks/codec.py", "--quick", timeout=180)
    rows = [line.split(" | ") for line in done.stdout.splitlines()[2:]]
    assert {row[1] for row in rows} == {
        "transport json",
        "transport protobuf",
        "protobuf (upb), own objects",
    }
    # The same declaration gives the same protobuf bytes as upb's classes.
    sizes = {(row[0], row[1]): row[2] for row in rows}
    assert (
        sizes[("| Reading", "transport protobuf")]
        == sizes[("| Reading", "protobuf (upb), own objects")]
    )


@pytest.mark.slow
def test_the_compression_table_runs() -> None:
    done = _run("-m", "benchmarks.compression", "--size", "65536", "--calls", "2", timeout=120)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| random")]
    assert len(rows) == 4  # two wires, with and without gzip


@pytest.mark.slow
def test_the_burst_benchmark_runs() -> None:
    done = _run("-m", "benchmarks.burst", "--tiny", timeout=180)
    assert "| asyncio | transport (48 in flight) | OK 100 |" in done.stdout
    assert "| sync | plain grpcio | " in done.stdout
    assert "| on | " in done.stdout and "| off | " in done.stdout


@pytest.mark.slow
def test_the_observability_benchmark_runs() -> None:
    pytest.importorskip("opentelemetry.sdk")
    done = _run("-m", "benchmarks.observability", "--tiny", timeout=180)
    assert "| client, SDK | " in done.stdout and "| server, no-op API | " in done.stdout
    assert "| on, SDK (client and server) | " in done.stdout
