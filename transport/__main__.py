"""``python -m transport``: the library's command line."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    from .cli import CommandParser  # help as plain text, for every sub-command too

    # The console script says "transport"; python -m transport (argv[0] is this file) says so.
    script = Path(sys.argv[0]).stem
    prog = "transport" if script == "transport" else "python -m transport"
    parser = CommandParser(prog=prog, description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="every call kind over loopback, then the owner story")
    demo.add_argument("--core", action="store_true", help="only the core demo (every call kind)")
    demo.add_argument("--owner", action="store_true", help="only the owner story (takeover)")
    demo.add_argument(
        "--etcd",
        action="store_true",
        help="the owner story on a three-member etcd cluster it starts (needs etcd installed)",
    )
    from .cli.call import add_commands as add_call
    from .cli.health import add_command as add_health
    from .cli.health import usage_status
    from .cli.proto import add_command as add_proto
    from .cli.run import add_command as add_run

    add_proto(commands)
    from .cli.serve import add_commands

    add_commands(commands)  # serve
    add_health(commands)
    add_run(commands)
    add_call(commands)  # list, call
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error: health exits 1 for those, as grpc_health_probe
        raise SystemExit(usage_status(argv, exc.code)) from None
    if args.command == "demo":
        if not (args.owner or args.etcd):
            from ._demo import run

            run()
        if not args.core:
            from .runtime.demo import run as run_owner_story

            run_owner_story(etcd=args.etcd)
        return 0
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
