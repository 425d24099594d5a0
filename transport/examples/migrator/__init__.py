"""Seed 000: ``t1.fps.model.Migrator`` (TurbineOne ffmpeg-framer), served and called.

``python -m transport.examples.migrator serve --port 0 --state DIR --ingest SRC:DEST``
serves it; ``demo`` ingests from a source directory with :func:`ingest`.
"""

from __future__ import annotations

from .client import copy_for as copy_for
from .client import ingest as ingest
from .protocol import ExportRequest as ExportRequest
from .protocol import ExportResponse as ExportResponse
from .protocol import IngestFileCopy as IngestFileCopy
from .protocol import IngestFileResult as IngestFileResult
from .protocol import Migrator as Migrator
from .server import MigratorServer as MigratorServer
from .server import parse_ingest as parse_ingest

__all__ = [
    "ExportRequest",
    "ExportResponse",
    "IngestFileCopy",
    "IngestFileResult",
    "Migrator",
    "MigratorServer",
    "copy_for",
    "ingest",
    "parse_ingest",
]
