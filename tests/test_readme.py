"""Run every ``python`` block of the README, section by section."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from transport.testing import TestServer

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _sections() -> list[tuple[str, str]]:
    """(heading, code) for each top-level section with python blocks."""
    sections: list[tuple[str, str]] = []
    for chunk in re.split(r"^## ", README.read_text(), flags=re.M)[1:]:
        heading = chunk.splitlines()[0].strip()
        code = "\n".join(_BLOCK.findall(chunk))
        if code:
            sections.append((heading, code))
    return sections


@pytest.mark.parametrize(("heading", "code"), _sections(), ids=[h for h, _ in _sections()])
def test_readme_section(
    heading: str, code: str, transport_serve: Callable[..., TestServer]
) -> None:
    namespace: dict[str, Any] = {"__name__": f"readme_{heading}"}
    exec(compile(code, f"README.md ({heading})", "exec", dont_inherit=True), namespace)
    fixtures = {"transport_serve": transport_serve}
    for name, value in list(namespace.items()):
        if name.startswith("test_") and inspect.isfunction(value):
            value(**{p: fixtures[p] for p in inspect.signature(value).parameters})


def test_readme_opens_with_the_two_commands() -> None:
    commands = re.findall(r"^```bash\n(.*?)\n```", README.read_text(), re.S | re.M)[:2]
    assert "python -m transport demo" in commands[0]
    assert "pytest" in commands[1]
    assert commands[1] in (README.parent / ".ci" / "run").read_text()
