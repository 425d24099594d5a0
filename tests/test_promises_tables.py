"""The promises tables at the end of docs/reliability.md and docs/runtime.md name real tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## The promises and the tests that pin them"
NAMED = re.compile(r"`([\w/]+\.py)::(\w+)`")


def _pinned(page: str) -> list[tuple[str, str]]:
    text = (ROOT / "docs" / page).read_text()
    assert HEADING in text, f"docs/{page} has no promises table"
    return NAMED.findall(text.split(HEADING, 1)[1])


@pytest.mark.parametrize("page", ["reliability.md", "runtime.md"])
def test_every_test_a_promises_table_names_exists(page: str) -> None:
    pinned = _pinned(page)
    assert len(pinned) >= 20
    missing = []
    for path, name in pinned:
        source = ROOT / "tests" / path
        defined = re.compile(rf"^(async )?def {name}\(", re.MULTILINE)
        if not source.is_file() or not defined.search(source.read_text()):
            missing.append(f"tests/{path}::{name}")
    assert not missing, f"docs/{page} names tests that do not exist: {missing}"
