"""The command line keeps grpc core's log lines to itself unless the user asks for them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.test_demo import ROOT
from transport._quiet import running_the_command_line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "-m", "transport", "demo"], True),
        (["python", "-X", "dev", "-mtransport", "health"], True),
        (["python", "-m", "transport.examples.runner", "serve"], True),
        (["python", "-m", "transporter"], False),
        (["python", "-m", "pytest", "-m", "transport"], False),
        (["python", "app.py", "-m", "transport"], False),
        (["/venv/bin/python", "/venv/bin/transport", "call"], True),  # the console script
        (["python", "transport.py"], False),
        (["python", "-c", "import transport"], False),
        ([], False),
    ],
)
def test_which_runs_are_the_command_line(argv: list[str], expected: bool) -> None:
    assert running_the_command_line(argv) is expected


def test_the_default_is_set_for_the_command_line_only() -> None:
    quiet = {key: value for key, value in os.environ.items() if key != "GRPC_VERBOSITY"}
    script = "import os, transport; print(os.environ.get('GRPC_VERBOSITY'))"
    seen = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=quiet,
        check=True,
    )
    assert seen.stdout.strip() == "None"  # a program that imports transport keeps grpc's defaults
