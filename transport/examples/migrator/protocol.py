"""Seed 000: ``t1.fps.model.Migrator`` of TurbineOne's ffmpeg-framer (``migrator.proto``).

A model implements it so its disk state survives upgrades and moves between
nodes. ``Ingest`` is a bidirectional stream turned around: the *server* sends
the requests (``IngestFileCopy``: copy this path of the other container to
this path of mine) and the client answers each with an ``IngestFileResult``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

from transport import Message, Number, Service, rpc


class IngestFileResult(Message):
    """The client's answer to one copy: both paths echoed, and an error (empty: success)."""

    source_path: Annotated[str, Number(1)] = ""  # Path inside the other container.
    dest_path: Annotated[str, Number(2)] = ""  # Path inside this container.
    error: Annotated[str, Number(3)] = ""  # The model may choose to ignore or fail.


class IngestFileCopy(Message):
    """A copy the server asks for: from the other container to this one."""

    source_path: Annotated[str, Number(1)] = ""  # Path inside the other container.
    dest_path: Annotated[str, Number(2)] = ""  # Path inside this container.


class ExportRequest(Message):
    """Asks for the files that make up the model's state."""


class ExportResponse(Message):
    """The files to copy onto a clean base image to reproduce the model."""

    paths: Annotated[list[str], Number(1)] = []


class Migrator(Service, Protocol, name="t1.fps.model.Migrator"):
    """Preserves a model's disk state across nodes and base image upgrades."""

    @rpc
    def Ingest(self, requests: Iterator[IngestFileResult]) -> Iterator[IngestFileCopy]:
        """The server sends the copies to make; the client answers each with its result."""
        ...

    @rpc
    def Export(self, request: ExportRequest) -> ExportResponse:
        """The files (relative paths) that make up the model's state."""
        ...
