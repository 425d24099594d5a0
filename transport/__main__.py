"""``python -m transport``: the library's command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m transport", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="show every call kind over loopback")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
