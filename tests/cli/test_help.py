"""Every command's ``--help`` reads as plain text, not as its docstring's reST."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.cli.test_demo import ROOT
from transport.cli import plain

_MARKUP = re.compile(r"``|:[a-z]+:`")


def _help(*command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "transport", *command, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_no_command_shows_rest_markup_in_its_help() -> None:
    top = _help()
    commands = re.search(r"\{([\w,-]+)\}", top)
    assert commands is not None, top
    names = commands.group(1).split(",")
    assert {"run", "call", "list", "health", "serve"} <= set(names)
    for name, text in [("", top)] + [(name, _help(name)) for name in names]:
        assert not _MARKUP.findall(text), f"python -m transport {name} --help:\n{text}"
    assert "ATTR names a Binding, a list of them" in _help("run")
    assert "python -m transport health HOST:PORT: the standard" in _help("health")


def test_plain_renders_roles_literals_and_literal_blocks() -> None:
    text = (
        "``python -m transport`` serves a :class:`~transport.Binding` "
        "(:func:`transport.bind`, :meth:`Binding.add_to <transport.Binding.add_to>`), so::"
    )
    assert plain(text) == (
        "python -m transport serves a Binding (transport.bind, Binding.add_to), so:"
    )
