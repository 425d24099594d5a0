"""Every command of ``python -m transport``, one module each; :mod:`.commands` parses them.

For a user's own services: ``run`` (with ``workers`` and ``drain``), ``list``
and ``call``, ``proto``; for the owner runtime: ``serve``, ``health``; and ``demo``.

:class:`CommandParser` is the parser of every command: its help comes from
docstrings written in reST, shown as plain text.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

__all__ = ["CallError", "CommandParser", "address", "plain"]

# :class:`~transport.Binding` -> Binding; :func:`transport.bind` -> transport.bind
_ROLE = re.compile(r":[\w:.-]+:`(~?)([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``")
_LITERAL_BLOCK = re.compile(r"(\S)::$", re.MULTILINE)  # "so::" introduces a block: "so:"


class CallError(Exception):
    """Raised when ``list`` or ``call`` cannot do as asked; the message says why."""


def address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def plain(text: str) -> str:
    """``text`` (reST from a docstring) as plain text for a terminal: no roles, no backquotes."""

    def role(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        return target.rpartition(".")[2] if match.group(1) else target

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"\1", text)
    return _LITERAL_BLOCK.sub(r"\1:", text)


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help is plain text; its sub-commands' parsers are too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Before the formatter wraps them, so that no markup is split over two lines.
        for text in ("description", "epilog"):
            if kwargs.get(text):
                kwargs[text] = plain(kwargs[text])
        super().__init__(*args, **kwargs)

    def format_help(self) -> str:
        """The help, its reST markup rendered as plain text."""
        return plain(super().format_help())
