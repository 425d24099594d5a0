"""``python -m transport.examples.migrator serve|demo``."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from transport import Client, bind

from .._cli import demo_against, parser, serve_until_signalled
from .client import ingest
from .protocol import ExportRequest, Migrator
from .server import MigratorServer, parse_ingest


def _ingest_spec(spec: str) -> tuple[str, str]:
    try:
        return parse_ingest(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _demo(target: str | None, source: Path | None, scratch: Path) -> None:
    source_dir = source or scratch / "source"
    if source is None:
        (source_dir / "weights").mkdir(parents=True)
        (source_dir / "weights" / "layer1.bin").write_bytes(b"\x00\x01" * 64)
        (source_dir / "config.json").write_text('{"threshold": 0.5}')
    plan = [("weights", "model/weights"), ("config.json", "config.json")]

    def call(address: str) -> None:
        with Client.connect(address, timeout=10.0) as client:
            for result in ingest(client, source_dir):
                print(f"copied {result.source_path} -> {result.dest_path} {result.error or 'ok'}")
            for path in client.call(Migrator.Export, ExportRequest()).paths:
                print(f"exported {path}")

    demo_against(target, lambda: [bind(Migrator, MigratorServer(scratch / "state", plan))], call)


def main() -> None:
    """Parse the command line and run ``serve`` or ``demo``."""
    root, serve, demo = parser("Serve or call t1.fps.model.Migrator (seed 000).")
    serve.add_argument("--state", type=Path, help="the state directory (default: a temp dir)")
    serve.add_argument(
        "--ingest",
        type=_ingest_spec,
        action="append",
        default=[],
        metavar="SRC:DEST",
        help="a copy to ask for: SRC in the other container, DEST under the state dir",
    )
    demo.add_argument("--source", type=Path, help="the directory to copy from (default: samples)")
    args = root.parse_args()
    with tempfile.TemporaryDirectory(prefix="migrator-") as scratch:
        if args.command == "serve":
            try:
                server = MigratorServer(args.state or Path(scratch), args.ingest)
            except ValueError as exc:
                root.error(str(exc))
            serve_until_signalled(
                [bind(Migrator, server)], args.port, wire=args.wire, compression=args.compression
            )
        else:
            _demo(args.target, args.source, Path(scratch))


if __name__ == "__main__":
    main()
