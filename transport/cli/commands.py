"""The parser of ``python -m transport``: every command of :mod:`transport.cli`, in one place."""

from __future__ import annotations

import sys
from pathlib import Path

from . import CommandParser, call, demo, health, proto, run, serve

__all__ = ["main"]

DESCRIPTION = "``python -m transport``: the library's command line."


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    # The console script says "transport"; python -m transport (argv[0] is __main__.py) says so.
    script = Path(sys.argv[0]).stem
    prog = "transport" if script == "transport" else "python -m transport"
    parser = CommandParser(prog=prog, description=DESCRIPTION)  # help as plain text, throughout
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_command(commands)
    proto.add_command(commands)
    serve.add_commands(commands)  # serve
    health.add_command(commands)
    run.add_command(commands)
    call.add_commands(commands)  # list, call
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error: health exits 1 for those, as grpc_health_probe
        raise SystemExit(health.usage_status(argv, exc.code)) from None
    return int(args.run(args))
