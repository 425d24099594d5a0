"""Seed 002: Scaleout Edge's ``CombinerClient`` and ``ModelService`` (``scaleout.proto``).

Both services have no package. Clients announce themselves, report status,
metrics and model updates with unary calls, and receive their tasks on a
long-lived ``TaskStream``; models travel as streams of ``FileChunk``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ...codec import Message
from ...service import Service, rpc
from ...wellknown import EnumField, ProtoEnum, Timestamp, UInt32Value


class LogLevel(ProtoEnum):
    """The level of a ``Status`` report."""

    NONE = 0
    INFO = 1
    DEBUG = 2
    WARNING = 3
    ERROR = 4
    AUDIT = 5


class ModelStatus(ProtoEnum):
    """The outcome of a model upload."""

    UNKNOWN = 0
    IN_PROGRESS = 1
    OK = 2
    FAILED = 3


class ActivityReport(Message):
    """A node's report when it polls for work."""

    node_id: str = ""  # If sent from a client
    correlation_id: str = ""
    status: str = ""
    done: bool = False
    response: str = ""  # json


class AttributeElem(Message):
    """One key/value attribute."""

    key: str = ""
    value: str = ""


class AttributeMessage(Message):
    """A client's attributes."""

    client_id: str = ""
    attributes: list[AttributeElem] = []
    timestamp: Timestamp | None = None


class ClientAnnounceRequest(Message):
    """A client joining the combiner."""

    client_id: str = ""
    type: str = ""
    parameters: str = ""


class ClientAvailableMessage(Message):
    """A client ready for tasks: opens its ``TaskStream``."""

    client_id: str = ""
    data: str = ""
    timestamp: str = ""


class FileChunk(Message):
    """A piece of a model file."""

    data: bytes = b""


class Heartbeat(Message):
    """A client staying engaged."""

    client_id: str = ""
    memory_utilisation: float = 0.0
    cpu_utilisation: float = 0.0


class MetricElem(Message):
    """One named metric value."""

    key: str = ""
    value: float = 0.0


class ModelMetric(Message):
    """Metrics of a model at a training step."""

    client_id: str = ""
    metrics: list[MetricElem] = []
    timestamp: Timestamp | None = None
    step: UInt32Value = None
    model_id: str = ""
    round_id: str = ""
    session_id: str = ""


class ModelPrediction(Message):
    """A prediction a client made with a model."""

    client_id: str = ""
    model_id: str = ""
    data: str = ""
    correlation_id: str = ""
    timestamp: Timestamp | None = None
    session_id: str = ""


class ModelRequest(Message):
    """Asks for a model by id."""

    model_id: str = ""


class ModelResponse(Message):
    """The outcome of a model upload."""

    status: EnumField[ModelStatus] = ModelStatus.UNKNOWN
    message: str = ""


class ModelUpdate(Message):
    """A client's update of a model after local training."""

    client_id: str = ""
    model_id: str = ""
    model_update_id: str = ""
    correlation_id: str = ""
    timestamp: Timestamp | None = None
    meta: str = ""
    config: str = ""
    round_id: str = ""
    session_id: str = ""


class ModelValidation(Message):
    """A client's validation of a model."""

    client_id: str = ""
    model_id: str = ""
    data: str = ""
    correlation_id: str = ""
    timestamp: Timestamp | None = None
    session_id: str = ""


class Response(Message):
    """The combiner's acknowledgement."""

    response: str = ""
    parameters: str = ""


class Status(Message):
    """A client's status report."""

    client_id: str = ""
    status: str = ""
    log_level: EnumField[LogLevel] = LogLevel.NONE
    timestamp: Timestamp | None = None
    type: str = ""


class TaskRequest(Message):
    """A task for a client: train, validate, predict..."""

    model_id: str = ""
    data: str = ""
    correlation_id: str = ""
    timestamp: str = ""
    session_id: str = ""
    round_id: str = ""
    type: str = ""
    status: str = ""
    client_id: str = ""


class TelemetryElem(Message):
    """One named telemetry value."""

    key: str = ""
    value: float = 0.0


class TelemetryMessage(Message):
    """A client's telemetry."""

    client_id: str = ""
    telemetries: list[TelemetryElem] = []
    timestamp: Timestamp | None = None


#: The largest ``FileChunk`` the reference server sends: 1 MiB.
CHUNK_SIZE = 1024 * 1024


def file_chunks(data: bytes, size: int = CHUNK_SIZE) -> Iterator[FileChunk]:
    """Split ``data`` into chunks of at most ``size`` bytes (none for empty data)."""
    view = memoryview(data)
    for offset in range(0, len(data), size):
        yield FileChunk(data=bytes(view[offset : offset + size]))


class CombinerClient(Service, Protocol, name="CombinerClient"):
    """What a client calls on its combiner."""

    @rpc
    def SendModelUpdate(self, request: ModelUpdate) -> Response:
        """Report a model update."""
        ...

    @rpc
    def SendModelValidation(self, request: ModelValidation) -> Response:
        """Report a model validation."""
        ...

    @rpc
    def SendModelPrediction(self, request: ModelPrediction) -> Response:
        """Report a model prediction."""
        ...

    @rpc
    def SendModelMetric(self, request: ModelMetric) -> Response:
        """Report model metrics."""
        ...

    @rpc
    def SendAttributeMessage(self, request: AttributeMessage) -> Response:
        """Report client attributes."""
        ...

    @rpc
    def SendTelemetryMessage(self, request: TelemetryMessage) -> Response:
        """Report telemetry."""
        ...

    @rpc
    def Announce(self, request: ClientAnnounceRequest) -> Response:
        """Join the combiner."""
        ...

    @rpc
    def PollAndReport(self, request: ActivityReport) -> TaskRequest:
        """Report activity and take the next task, if any."""
        ...

    @rpc
    def SendStatus(self, request: Status) -> Response:
        """Status endpoint."""
        ...

    @rpc
    def SendHeartbeat(self, request: Heartbeat) -> Response:
        """Client messaging to stay engaged."""
        ...

    @rpc
    def TaskStream(self, request: ClientAvailableMessage) -> Iterator[TaskRequest]:
        """Stream endpoints for training/validation pub/sub."""
        ...


class ModelService(Service, Protocol, name="ModelService"):
    """Model files, uploaded and downloaded in chunks."""

    @rpc
    def Upload(self, requests: Iterator[FileChunk]) -> ModelResponse:
        """Store a model; its id travels in the request metadata ``model-id``."""
        ...

    @rpc
    def Download(self, request: ModelRequest) -> Iterator[FileChunk]:
        """Stream a stored model back in chunks."""
        ...
