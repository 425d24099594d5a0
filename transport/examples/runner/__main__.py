"""``python -m transport.examples.runner serve|demo``."""

from __future__ import annotations

from transport import Client, Empty, bind

from .._cli import demo_against, parser, serve_until_signalled
from .client import engage
from .protocol import RunnerProtocol
from .server import RunnerServer


def _call(address: str) -> None:
    with Client.connect(address, timeout=10.0) as client:
        for fn, body in (("echo", b"hello"), ("upper", b"hello, runner"), ("fail", b"x")):
            outcome = engage(client, fn, body)
            if outcome.finished.success:
                print(f"{fn}: {outcome.body.decode()}")
            else:
                print(f"{fn}: failed: {outcome.finished.error_str}")
        print(f"active: {client.call(RunnerProtocol.Status, Empty()).active}")


def main() -> None:
    """Parse the command line and run ``serve`` or ``demo``."""
    root, _, _ = parser("Serve or call RunnerProtocol (seed 001).")
    args = root.parse_args()
    if args.command == "serve":
        serve_until_signalled(
            [bind(RunnerProtocol, RunnerServer())],
            args.port,
            wire=args.wire,
            compression=args.compression,
        )
    else:
        demo_against(args.target, lambda: [bind(RunnerProtocol, RunnerServer())], _call)


if __name__ == "__main__":
    main()
