"""``python -m transport``: the library's command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m transport", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="every call kind over loopback, then the owner story")
    demo.add_argument("--core", action="store_true", help="only the core demo (every call kind)")
    demo.add_argument("--owner", action="store_true", help="only the owner story (takeover)")
    proto = commands.add_parser("proto", help="print the .proto of declared services")
    proto.add_argument("services", nargs="+", metavar="MODULE:Service")
    proto.add_argument("--package", help="the proto package (default: the services' prefix)")
    from .runtime.cli import add_commands

    add_commands(commands)  # serve, health
    args = parser.parse_args(argv)
    if args.command == "demo":
        if not args.owner:
            from ._demo import run

            run()
        if not args.core:
            from .runtime.demo import run as run_owner_story

            run_owner_story()
        return 0
    if args.command == "proto":
        from .protobuf.export import proto_command

        return proto_command(args.services, args.package)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
