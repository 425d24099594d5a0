"""The reference Migrator: a state directory and a plan of files to ingest."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from transport import Context, RpcError, StatusCode

from .._in_flight import CallsInFlight
from .protocol import ExportRequest, ExportResponse, IngestFileCopy, IngestFileResult

__all__ = ["MigratorServer", "parse_ingest"]

log = logging.getLogger(__name__)


def parse_ingest(spec: str) -> tuple[str, str]:
    """Split ``SRC:DEST`` (the ``--ingest`` option) into its two paths."""
    source, sep, dest = spec.rpartition(":")
    if not sep or not source or not dest:
        raise ValueError(f"--ingest takes SRC:DEST, got {spec!r}")
    return source, dest


class MigratorServer:
    """Serves ``t1.fps.model.Migrator`` for the model state in ``state_dir``.

    ``plan`` lists ``(source, dest)`` pairs: ``source`` is a path in the other
    container, ``dest`` a path relative to ``state_dir``. ``Ingest`` asks the
    client for each copy, with ``destPath`` the absolute path inside this
    server's state directory.
    """

    def __init__(self, state_dir: Path | str, plan: Iterable[tuple[str, str]] = ()) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.plan = [
            IngestFileCopy(source_path=source, dest_path=str(self._destination(dest)))
            for source, dest in plan
        ]
        self.ingests = CallsInFlight()
        self._lock = threading.Lock()
        self.results: list[IngestFileResult] = []

    def _destination(self, dest: str) -> Path:
        path = (self.state_dir / dest).resolve()
        if path == self.state_dir or not path.is_relative_to(self.state_dir):
            raise ValueError(f"ingest destination {dest!r} is not inside {self.state_dir}")
        return path

    def Export(self, request: ExportRequest, context: Context) -> ExportResponse:
        """List the files under the state directory, sorted, relative to it."""
        paths = (path for path in self.state_dir.rglob("*") if path.is_file())
        return ExportResponse(paths=sorted(p.relative_to(self.state_dir).as_posix() for p in paths))

    def Ingest(
        self, results: Iterator[IngestFileResult], context: Context
    ) -> Iterator[IngestFileCopy]:
        """Ask for every copy of the plan, then take one answer per copy and end."""
        with self.ingests.track():
            yield from self.plan
            unanswered = Counter((copy.source_path, copy.dest_path) for copy in self.plan)
            while unanswered.total():
                result = next(results, None)
                if result is None:
                    raise RpcError(
                        StatusCode.INVALID_ARGUMENT,
                        f"the client stopped with {unanswered.total()} copies unanswered",
                        {"unanswered": sorted(source for source, _ in +unanswered)},
                    )
                key = (result.source_path, result.dest_path)
                if not unanswered[key]:
                    raise RpcError(
                        StatusCode.INVALID_ARGUMENT,
                        "IngestFileResult names a copy the server did not ask for",
                        {"sourcePath": result.source_path, "destPath": result.dest_path},
                    )
                unanswered[key] -= 1
                if result.error:
                    log.warning("ingest of %s failed: %s", result.source_path, result.error)
                with self._lock:
                    self.results.append(result)
