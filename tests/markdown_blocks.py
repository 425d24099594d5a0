"""The code blocks of the README and the docs pages, and how tests run them."""

from __future__ import annotations

import inspect
import re
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
