"""Run every ``python`` block of the docs pages, page by page, and check the site's map."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.markdown_blocks import python_blocks, run_blocks
from transport.testing import TestServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _pages() -> list[tuple[str, str]]:
    """(page, code) for each page with python blocks, the blocks joined in order."""
    pages = []
    for page in sorted(DOCS.glob("*.md")):
        code = "\n".join(python_blocks(page.read_text()))
        if code:
            pages.append((page.name, code))
    return pages


@pytest.mark.parametrize(("page", "code"), _pages(), ids=[p for p, _ in _pages()])
def test_docs_page(page: str, code: str, transport_serve: Callable[..., TestServer]) -> None:
    run_blocks(code, f"docs/{page}", {"transport_serve": transport_serve})


def test_every_page_is_in_the_nav_and_every_link_resolves() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {page.name for page in DOCS.glob("*.md")}
    assert pages == set(re.findall(r"^  - [^:]+: (\S+\.md)$", nav, re.M))
    readme_links = re.findall(r"\]\((docs/[\w-]+\.md)", (ROOT / "README.md").read_text())
    assert readme_links and all((ROOT / link).is_file() for link in readme_links)


def test_the_home_page_takes_the_readme_quickstart() -> None:
    include = re.search(r'^--8<-- "README\.md:(\w+)"$', (DOCS / "index.md").read_text(), re.M)
    assert include is not None
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"<!-- --8<-- [start:{include.group(1)}] -->\n")[1]
    quickstart = section.split(f"<!-- --8<-- [end:{include.group(1)}] -->")[0]
    assert "# kv.py" in quickstart and "# test_kv.py" in quickstart
    # Inside the included text a link would resolve from docs/, not from the README.
    assert "](" not in quickstart
