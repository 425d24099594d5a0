"""The code blocks of the README and the docs pages, and how tests run them."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# A block that starts with "# name.py" is a file the reader saves and runs.
FILE_NAME = re.compile(r"\A# (\w+\.py)\n")


def python_blocks(markdown: str) -> list[str]:
    """The python blocks of a page, in order (indented ones included)."""
    return ROOT_BLOCK.findall(markdown)


def file_blocks(markdown: str) -> dict[str, str]:
    """The blocks that are files, by file name."""
    files: dict[str, str] = {}
    for block in python_blocks(markdown):
        named = FILE_NAME.match(block)
        if named:
            files[named.group(1)] = block
    return files


def run_blocks(code: str, name: str, fixtures: dict[str, Any]) -> None:
    """Run ``code`` in a fresh namespace, then each ``test_*`` function it defines."""
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(code, name, "exec", dont_inherit=True), namespace)
    for key, value in list(namespace.items()):
        if key.startswith("test_") and inspect.isfunction(value):
            value(**{p: fixtures[p] for p in inspect.signature(value).parameters})


def save_files(markdown: str, directory: Path) -> None:
    """Save a page's file blocks in ``directory``, as a reader would."""
    for name, code in file_blocks(markdown).items():
        (directory / name).write_text(code)


@contextmanager
def running_program(directory: Path, *arguments: str) -> Iterator[str]:
    """Run ``python ARGUMENTS`` and yield the 127.0.0.1 address it says it listens on.

    A quickstart server prints ``listening on port N``; ``python -m transport run``
    prints ``listening on HOST:PORT``.
    """
    process = subprocess.Popen(
        [sys.executable, *arguments],
        cwd=directory,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server prints, or exits
        found = re.fullmatch(r"listening on (?:port |127\.0\.0\.1:)(\d+)\n", line)
        assert found, f"{arguments} printed {line!r}"
        yield f"127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
