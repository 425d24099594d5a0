"""The client side of ``Ingest``: perform the copies the server asks for."""

from __future__ import annotations

import shutil
from pathlib import Path

from transport import Client

from .protocol import IngestFileCopy, IngestFileResult, Migrator

__all__ = ["copy_for", "ingest"]


def _inside(root: Path, path: str) -> Path:
    # The source path is a path of the other container, whose root is ``root``.
    resolved = (root / path.lstrip("/")).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"{path!r} is outside the source directory")
    return resolved


def copy_for(copy: IngestFileCopy, source_dir: Path | str) -> IngestFileResult:
    """Perform one copy (a directory copies recursively); the result's error says what failed."""
    try:
        source = _inside(Path(source_dir).resolve(), copy.source_path)
        dest = Path(copy.dest_path)
        if not dest.is_absolute():
            raise ValueError(f"destPath {copy.dest_path!r} is not an absolute path")
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        error = ""
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return IngestFileResult(source_path=copy.source_path, dest_path=copy.dest_path, error=error)


def ingest(
    client: Client, source_dir: Path | str, *, timeout: float | None = None
) -> list[IngestFileResult]:
    """Run ``Ingest``: copy from ``source_dir`` each file the server asks for, answer each.

    Returns the results sent, in order. Raises :class:`~transport.RpcError` if
    the server ends the stream with an error.
    """
    results: list[IngestFileResult] = []
    with client.open(Migrator.Ingest, timeout=timeout) as stream:
        for copy in stream:
            result = copy_for(copy, source_dir)
            stream.write(result)
            results.append(result)
    return results
