"""The parser of ``python -m transport``: every command of :mod:`transport.cli`, in one place."""

from __future__ import annotations

import gc
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
    try:
        return int(args.run(args))
    finally:
        # A grpcio call that ended in an error is its own exception, in a cycle
        # with its traceback: left to the collection at interpreter exit, its
        # __del__ waits for a lock that a grpc thread frozen by the shutdown may
        # hold, and the command never exits (seen: 1 of 60 `call` runs of an
        # unknown method on a loaded machine). Collected here, grpc's threads
        # still run.
        gc.collect()
