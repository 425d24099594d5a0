"""``python -m transport proto MODULE:Service...``: print the ``.proto`` of declared services."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from ..errors import DeclarationError
from ..proto.export import proto_file
from ..service import Service

__all__ = ["add_command", "proto_command"]


def add_command(commands: Any) -> None:
    """Add ``proto`` to the subcommands of ``python -m transport``."""
    proto = commands.add_parser("proto", help="print the .proto of declared services")
    proto.add_argument("services", nargs="+", metavar="MODULE:Service")
    proto.add_argument("--package", help="the proto package (default: the services' prefix)")
    proto.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    return proto_command(args.services, args.package)


def proto_command(targets: list[str], package: str | None) -> int:
    """``python -m transport proto MODULE:Service...``: print the ``.proto``; 2 on a bad target."""
    services: list[type[object]] = []
    for target in targets:
        module_name, _, attribute = target.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as exc:
            print(f"cannot load {target!r}: {exc}", file=sys.stderr)
            return 2
        if not (isinstance(found, type) and Service in found.__mro__):
            print(f"{target!r} is not a Service declaration", file=sys.stderr)
            return 2
        services.append(found)
    try:
        sys.stdout.write(proto_file(*services, package=package))
    except DeclarationError as exc:
        print(f"cannot write the .proto: {exc}", file=sys.stderr)
        return 2
    return 0
