"""``run --access-log``: one line per call, as text or JSON, read from the server's stdout."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.cli.test_metrics import _async_calls, _calls
from tests.cli.test_run import Run

pytestmark = pytest.mark.slow

#: What each call of ``_calls`` logs: method, status, messages received and sent.
EXPECTED = [
    ("/transport.tests.Echo/Say", "OK", 1, 1),
    ("/transport.tests.Echo/Say", "FAILED_PRECONDITION", 1, 0),
    ("/transport.tests.Echo/Repeat", "OK", 1, 3),
    ("/transport.tests.Echo/Collect", "OK", 2, 1),
    ("/transport.tests.Echo/Chat", "OK", 2, 3),
]
TEXT = re.compile(
    r"method=(?P<method>\S+) peer=(?P<peer>ipv[46]:\S+) status=(?P<status>[A-Z_]+) "
    r"duration_ms=(?P<duration>\d+\.\d{3}) received=(?P<received>\d+) sent=(?P<sent>\d+)"
)


def _served(run: Run, target: str) -> list[str]:
    if target.endswith("async_echo"):
        asyncio.run(_async_calls(run.address))
    else:
        _calls(run.address)
    return [run.next_line(timeout=10) for _ in EXPECTED]


@pytest.mark.parametrize("target", ["tests.run_app:echo", "tests.run_app:async_echo"])
def test_a_text_line_per_call(target: str) -> None:
    with Run(target, "--port", "0", "--access-log") as run:
        lines = _served(run, target)
        seen = []
        for line in lines:
            found = TEXT.fullmatch(line)
            assert found is not None, line
            assert float(found["duration"]) >= 0
            assert found["peer"].startswith("ipv4:127.0.0.1:")
            seen.append(
                (found["method"], found["status"], int(found["received"]), int(found["sent"]))
            )
        assert seen == EXPECTED
        assert run.stop()[0] == 0
        assert run.next_line() == "<eof>"  # one line per call, no more


@pytest.mark.parametrize("target", ["tests.run_app:echo", "tests.run_app:async_echo"])
def test_a_json_line_per_call(target: str) -> None:
    with Run(target, "--port", "0", "--access-log", "--access-log-format", "json") as run:
        records = [json.loads(line) for line in _served(run, target)]
        assert [(r["method"], r["status"], r["received"], r["sent"]) for r in records] == EXPECTED
        assert [r["code"] for r in records] == [0, 9, 0, 0, 0]
        for record in records:
            assert record.keys() == {
                "method",
                "peer",
                "status",
                "code",
                "duration_ms",
                "received",
                "sent",
            }
            assert record["peer"].startswith("ipv4:127.0.0.1:")
            assert isinstance(record["duration_ms"], float) and record["duration_ms"] >= 0
        assert run.stop()[0] == 0


def test_each_worker_logs_its_calls() -> None:
    with Run("tests.run_app:echo", "--port", "0", "--workers", "2", "--access-log") as run:
        lines = _served(run, "tests.run_app:echo")
        assert [TEXT.fullmatch(line) is not None for line in lines] == [True] * len(EXPECTED)


def test_without_the_flag_no_line_is_logged() -> None:
    with Run("tests.run_app:echo", "--port", "0") as run:
        _calls(run.address)
        assert run.stop()[0] == 0
        assert run.next_line() == "<eof>"
