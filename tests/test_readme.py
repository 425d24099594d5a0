"""Run every ``python`` block of the README: section by section, and the quickstart as programs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.markdown_blocks import (
    FILE_NAME,
    file_blocks,
    python_blocks,
    run_blocks,
    running_program,
    save_files,
)
from transport.testing import TestServer

README = Path(__file__).resolve().parent.parent / "README.md"


def _sections() -> list[tuple[str, str]]:
    """(heading, code) for each top-level section with python blocks that are not files."""
    sections: list[tuple[str, str]] = []
    for chunk in re.split(r"^## ", README.read_text(), flags=re.M)[1:]:
        heading = chunk.splitlines()[0].strip()
        code = "\n".join(b for b in python_blocks(chunk) if not FILE_NAME.match(b))
        if code:
            sections.append((heading, code))
    return sections


def test_readme_sections(transport_serve: Callable[..., TestServer]) -> None:
    """Each section's blocks in one namespace (the quickstart's files run below)."""
    for heading, code in _sections():
        run_blocks(code, f"README.md ({heading})", {"transport_serve": transport_serve})


def test_readme_opens_with_the_two_commands() -> None:
    commands = re.findall(r"^```bash\n(.*?)\n```", README.read_text(), re.S | re.M)[:2]
    assert "python -m transport demo" in commands[0]
    assert "pytest" in commands[1]
    # .ci/run runs the README's own line, found by this pattern: it must find this one.
    run = (README.parent / ".ci" / "run").read_text()
    found = re.search(r"grep -m 1 -E '(.*?)' README\.md", run)
    assert found is not None, ".ci/run no longer reads its test command from README.md"
    lines = [line for line in README.read_text().splitlines() if re.search(found[1], line)]
    assert lines[:1] == [commands[1]]


def test_every_python_block_is_run() -> None:
    """A block is either in a section run above or a file of the quickstart below."""
    blocks = python_blocks(README.read_text())
    files = [b for b in blocks if FILE_NAME.match(b)]
    assert sorted(file_blocks(README.read_text())) == [
        "app.py",
        "client.py",
        "kv.py",
        "server.py",
        "server_async.py",
        "test_kv.py",
    ]
    assert len(files) == 6
    run = "\n".join(code for _, code in _sections())
    assert all(b in run for b in blocks if not FILE_NAME.match(b))


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """The quickstart's files, saved in a directory as a reader would."""
    save_files(README.read_text(), tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["server.py", "127.0.0.1:0"],
        ["server_async.py", "127.0.0.1:0"],
        ["-m", "transport", "run", "app:bindings", "--port", "0"],
    ],
    ids=["server.py", "server_async.py", "transport-run"],
)
def test_the_quickstart_serves_and_calls(quickstart: Path, command: list[str]) -> None:
    with running_program(quickstart, *command) as address:
        client = subprocess.run(
            [sys.executable, "client.py", address],
            cwd=quickstart,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert client.returncode == 0, client.stderr
    assert client.stdout == (
        "greeting = hello\nmissing: NOT_FOUND no such key {'key': 'missing'}\n"
    )


@pytest.mark.slow
def test_the_quickstart_test_passes_under_pytest(quickstart: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_kv.py"],
        cwd=quickstart,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.slow
def test_the_quickstart_passes_mypy_strict_with_exact_types(quickstart: Path) -> None:
    (quickstart / "reveal.py").write_text(
        "from kv import KV, Key\nfrom transport import Client\n\n\n"
        "def get(client: Client) -> None:\n"
        '    reveal_type(client.call(KV.Get, Key(key="a")))\n'
    )
    files = sorted(p.name for p in quickstart.glob("*.py"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            # Check the user's files; the package is checked by CI's own mypy run (as an
            # installed package's errors are not a user's to see).
            "--follow-imports=silent",
            "--cache-dir",
            str(quickstart / ".mypy"),
            *files,
        ],
        cwd=quickstart,
        # An editable install hides the package from mypy; a user's pip install does not.
        env={**os.environ, "MYPYPATH": str(README.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert 'reveal.py:6: note: Revealed type is "kv.Entry"' in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout
    assert "error:" not in result.stdout
