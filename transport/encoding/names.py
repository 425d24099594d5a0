"""The JSON name of a ``.proto`` field, by protoc's rule.

One rule, read by the lenient JSON reader, the descriptors reflection serves
and the ``.proto`` export.
"""

from __future__ import annotations

__all__ = ["json_name"]


def json_name(proto_name: str) -> str:
    """The ``json_name`` protoc gives a field: each ``_`` dropped, the letter after it uppercased.

    ``request_id`` is ``requestId``, ``_lead`` is ``Lead``, ``a__b`` is ``aB``,
    ``trail_`` is ``trail`` and ``d_1x`` is ``d1x`` (as protoc 3.21 writes them).
    """
    out: list[str] = []
    upper = False
    for char in proto_name:
        if char == "_":
            upper = True
        else:
            out.append(char.upper() if upper and char.isascii() else char)
            upper = False
    return "".join(out)
