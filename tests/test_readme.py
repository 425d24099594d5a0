"""Run every ``python`` block of the README: section by section, and the quickstart as programs."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.markdown_blocks import FILE_NAME, file_blocks, python_blocks, run_blocks
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
    assert commands[1] in (README.parent / ".ci" / "run").read_text()


def test_every_python_block_is_run() -> None:
    """A block is either in a section run above or a file of the quickstart below."""
    blocks = python_blocks(README.read_text())
    files = [b for b in blocks if FILE_NAME.match(b)]
    assert sorted(file_blocks(README.read_text())) == [
        "client.py",
        "kv.py",
        "server.py",
        "server_async.py",
        "test_kv.py",
    ]
    assert len(files) == 5
    run = "\n".join(code for _, code in _sections())
    assert all(b in run for b in blocks if not FILE_NAME.match(b))


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """The quickstart's files, saved in a directory as a reader would."""
    for name, code in file_blocks(README.read_text()).items():
        (tmp_path / name).write_text(code)
    return tmp_path


@contextmanager
def _serving(directory: Path, program: str) -> Iterator[str]:
    """Run ``python program 127.0.0.1:0`` and yield its address once it listens."""
    process = subprocess.Popen(
        [sys.executable, program, "127.0.0.1:0"],
        cwd=directory,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server prints, or exits
        found = re.fullmatch(r"listening on port (\d+)\n", line)
        assert found, f"{program} printed {line!r}"
        yield f"127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("program", ["server.py", "server_async.py"])
def test_the_quickstart_serves_and_calls(quickstart: Path, program: str) -> None:
    with _serving(quickstart, program) as address:
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
