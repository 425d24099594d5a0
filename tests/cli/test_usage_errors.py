"""A command line that does not parse exits with status 2 (docs/cli.md), for every command.

``health`` is the one exception: it exits 1, as ``grpc_health_probe`` does for
invalid arguments, so that scripts written for the probe keep working.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each command with the positional arguments it needs, so the unknown option is the error.
COMMANDS = [
    ("demo",),
    ("proto", "tests.run_app:KV"),
    ("serve",),
    ("run", "tests.run_app:binding"),
    ("list", "127.0.0.1:1"),
    ("call", "127.0.0.1:1", "kv.v1.KV/Get"),
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transport", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=[words[0] for words in COMMANDS])
def test_an_unknown_option_is_a_usage_error_with_status_2(command: tuple[str, ...]) -> None:
    result = _run(*command, "--no-such-option")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "usage: python -m transport" in result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr


@pytest.mark.parametrize("args", [(), ("no-such-command",)])
def test_no_command_or_an_unknown_one_is_a_usage_error_with_status_2(
    args: tuple[str, ...],
) -> None:
    result = _run(*args)
    assert result.returncode == 2, result.stderr
    assert "usage: python -m transport" in result.stderr


def test_health_exits_1_for_a_usage_error_as_grpc_health_probe_does() -> None:
    result = _run("health", "127.0.0.1:1", "--no-such-option")
    assert result.returncode == 1, result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr
