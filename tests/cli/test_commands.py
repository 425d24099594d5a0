"""Every command of ``python -m transport`` lives in ``transport/cli/``; ``__main__`` imports it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import transport

PACKAGE = Path(transport.__file__).parent
# Programs of their own (python -m transport.interop, the examples' runners), not commands.
OWN_PROGRAMS = ("examples/", "interop/")


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports, anywhere in it, relative ones under ``transport.``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "transport." * (node.level > 0) + (node.module or "")
            found.update(
                f"{base}.{alias.name}" if node.module is None else base for alias in node.names
            )
    return found


def test_main_imports_the_cli_package_only() -> None:
    imported = _imports(PACKAGE / "__main__.py")
    ours = {name for name in imported if name.split(".")[0] == "transport"}
    assert ours and all(name.startswith("transport.cli.") for name in ours), ours
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in imported - ours)


def test_every_command_is_registered_in_cli() -> None:
    registering = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "add_parser(" in path.read_text()
        and not str(path.relative_to(PACKAGE)).startswith(OWN_PROGRAMS)
    )
    assert registering and all(name.startswith("cli/") for name in registering), registering
