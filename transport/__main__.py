"""``python -m transport``: the library's command line (:mod:`transport.cli`)."""

from __future__ import annotations

import sys

from .cli.commands import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
