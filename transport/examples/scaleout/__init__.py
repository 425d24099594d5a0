"""Seed 002: Scaleout Edge's ``CombinerClient`` and ``ModelService``, served and called.

``python -m transport.examples.scaleout serve --port 0`` serves both on one
port; ``demo`` announces a client, reports, receives tasks on its
``TaskStream`` and moves a model up and down.
"""

from __future__ import annotations

from .client import download_model as download_model
from .client import upload_model as upload_model
from .protocol import CHUNK_SIZE as CHUNK_SIZE
from .protocol import ActivityReport as ActivityReport
from .protocol import AttributeElem as AttributeElem
from .protocol import AttributeMessage as AttributeMessage
from .protocol import ClientAnnounceRequest as ClientAnnounceRequest
from .protocol import ClientAvailableMessage as ClientAvailableMessage
from .protocol import CombinerClient as CombinerClient
from .protocol import CombinerClientUpstream as CombinerClientUpstream
from .protocol import FileChunk as FileChunk
from .protocol import Heartbeat as Heartbeat
from .protocol import LogLevel as LogLevel
from .protocol import MetricElem as MetricElem
from .protocol import ModelMetric as ModelMetric
from .protocol import ModelPrediction as ModelPrediction
from .protocol import ModelRequest as ModelRequest
from .protocol import ModelResponse as ModelResponse
from .protocol import ModelService as ModelService
from .protocol import ModelServiceUpstream as ModelServiceUpstream
from .protocol import ModelStatus as ModelStatus
from .protocol import ModelUpdate as ModelUpdate
from .protocol import ModelValidation as ModelValidation
from .protocol import Response as Response
from .protocol import Status as Status
from .protocol import TaskRequest as TaskRequest
from .protocol import TelemetryElem as TelemetryElem
from .protocol import TelemetryMessage as TelemetryMessage
from .protocol import file_chunks as file_chunks
from .server import CombinerServer as CombinerServer
from .server import ModelStore as ModelStore
from .tasks import TaskQueues as TaskQueues

__all__ = [
    "CHUNK_SIZE",
    "ActivityReport",
    "AttributeElem",
    "AttributeMessage",
    "ClientAnnounceRequest",
    "ClientAvailableMessage",
    "CombinerClient",
    "CombinerClientUpstream",
    "CombinerServer",
    "FileChunk",
    "Heartbeat",
    "LogLevel",
    "MetricElem",
    "ModelMetric",
    "ModelPrediction",
    "ModelRequest",
    "ModelResponse",
    "ModelService",
    "ModelServiceUpstream",
    "ModelStatus",
    "ModelStore",
    "ModelUpdate",
    "ModelValidation",
    "Response",
    "Status",
    "TaskQueues",
    "TaskRequest",
    "TelemetryElem",
    "TelemetryMessage",
    "download_model",
    "file_chunks",
    "upload_model",
]
