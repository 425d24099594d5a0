"""``python -m transport demo``, the main job, run as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# grpc core's log lines: "I1130 03:08:10.398106   31321 chttp2_transport.cc:1403] ..."
GRPC_CORE_LINE = re.compile(r"^[DIWEF]\d{4} [\d:.]+ +\d+ [\w/.-]+\.cc:\d+\]", re.MULTILINE)


@pytest.mark.slow
def test_the_demo_makes_every_kind_of_call_and_shows_the_errors() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "transport", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        # The command line is quiet by default: no grpc core lines (``Got goaway``).
        env={key: value for key, value in os.environ.items() if key != "GRPC_VERBOSITY"},
    )
    assert result.returncode == 0, result.stderr
    assert not GRPC_CORE_LINE.search(result.stdout + result.stderr)
    out = result.stdout
    for server in ("sync", "asyncio"):
        section = out.split(f"{server} server on ")[1].split(" server on ")[0]
        assert re.match(r"127\.0\.0\.1:\d+\n", section)
        for line in ("unary-unary   Summarise", "unary-stream  Replay", "stream-unary  Upload"):
            assert line in section, f"{server}: {line!r} missing"
        assert "stream-stream Live" in section
    assert "Summary(sensor='t1', count=4, mean=2.5)" in out  # a numpy payload, summarised
    assert "('x-served-by', 'sync')" in out  # trailing metadata
    assert "shapes [(1,), (2,), (3,)]" in out  # numpy arrays streamed back
    assert "handler error           -> INVALID_ARGUMENT: no values {'sensor': 'empty'}" in out
    assert (
        "bad request (raw JSON)  -> INVALID_ARGUMENT: request does not decode: "
        "Expected `str`, got `int` - at `$.sensor`"
    ) in out
    assert "50 ms deadline, silent  -> DEADLINE_EXCEEDED" in out
    assert "Traceback" not in result.stderr
