"""Seed 002: Scaleout Edge's ``CombinerClient`` and ``ModelService`` (``scaleout.proto``).

Both services have no package. Clients announce themselves, report status,
metrics and model updates with unary calls, and receive their tasks on a
long-lived ``TaskStream``; models travel as streams of ``FileChunk``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

from transport import (
    EnumField,
    Float32,
    Message,
    Number,
    ProtoEnum,
    Service,
    Timestamp,
    UInt32Value,
    rpc,
)


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

    node_id: Annotated[str, Number(1)] = ""  # If sent from a client
    correlation_id: Annotated[str, Number(2)] = ""
    status: Annotated[str, Number(3)] = ""
    done: Annotated[bool, Number(4)] = False
    response: Annotated[str, Number(5)] = ""  # json


class AttributeElem(Message):
    """One key/value attribute."""

    key: Annotated[str, Number(1)] = ""
    value: Annotated[str, Number(2)] = ""


class AttributeMessage(Message):
    """A client's attributes."""

    client_id: Annotated[str, Number(1)] = ""
    attributes: Annotated[list[AttributeElem], Number(2)] = []
    timestamp: Annotated[Timestamp | None, Number(3)] = None


class ClientAnnounceRequest(Message):
    """A client joining the combiner."""

    client_id: Annotated[str, Number(1)] = ""
    type: Annotated[str, Number(2)] = ""
    parameters: Annotated[str, Number(3)] = ""


class ClientAvailableMessage(Message):
    """A client ready for tasks: opens its ``TaskStream``."""

    client_id: Annotated[str, Number(1)] = ""
    data: Annotated[str, Number(2)] = ""
    timestamp: Annotated[str, Number(3)] = ""


class FileChunk(Message):
    """A piece of a model file."""

    data: Annotated[bytes, Number(1)] = b""


class Heartbeat(Message):
    """A client staying engaged."""

    client_id: Annotated[str, Number(1)] = ""
    memory_utilisation: Annotated[Float32, Number(2)] = 0.0
    cpu_utilisation: Annotated[Float32, Number(3)] = 0.0


class MetricElem(Message):
    """One named metric value."""

    key: Annotated[str, Number(1)] = ""
    value: Annotated[Float32, Number(2)] = 0.0


class ModelMetric(Message):
    """Metrics of a model at a training step."""

    client_id: Annotated[str, Number(1)] = ""
    metrics: Annotated[list[MetricElem], Number(2)] = []
    timestamp: Annotated[Timestamp | None, Number(3)] = None
    step: Annotated[UInt32Value, Number(4)] = None
    model_id: Annotated[str, Number(5)] = ""
    round_id: Annotated[str, Number(6)] = ""
    session_id: Annotated[str, Number(7)] = ""


class ModelPrediction(Message):
    """A prediction a client made with a model."""

    client_id: Annotated[str, Number(1)] = ""
    model_id: Annotated[str, Number(3)] = ""
    data: Annotated[str, Number(4)] = ""
    correlation_id: Annotated[str, Number(5)] = ""
    timestamp: Annotated[Timestamp | None, Number(6)] = None
    session_id: Annotated[str, Number(8)] = ""


class ModelRequest(Message):
    """Asks for a model by id."""

    model_id: Annotated[str, Number(3)] = ""


class ModelResponse(Message):
    """The outcome of a model upload."""

    status: Annotated[EnumField[ModelStatus], Number(3)] = ModelStatus.UNKNOWN
    message: Annotated[str, Number(4)] = ""


class ModelUpdate(Message):
    """A client's update of a model after local training."""

    client_id: Annotated[str, Number(1)] = ""
    model_id: Annotated[str, Number(3)] = ""
    model_update_id: Annotated[str, Number(4)] = ""
    correlation_id: Annotated[str, Number(5)] = ""
    timestamp: Annotated[Timestamp | None, Number(6)] = None
    meta: Annotated[str, Number(7)] = ""
    config: Annotated[str, Number(8)] = ""
    round_id: Annotated[str, Number(9)] = ""
    session_id: Annotated[str, Number(10)] = ""


class ModelValidation(Message):
    """A client's validation of a model."""

    client_id: Annotated[str, Number(1)] = ""
    model_id: Annotated[str, Number(3)] = ""
    data: Annotated[str, Number(4)] = ""
    correlation_id: Annotated[str, Number(5)] = ""
    timestamp: Annotated[Timestamp | None, Number(6)] = None
    session_id: Annotated[str, Number(8)] = ""


class Response(Message):
    """The combiner's acknowledgement."""

    response: Annotated[str, Number(1)] = ""
    parameters: Annotated[str, Number(2)] = ""


class Status(Message):
    """A client's status report."""

    client_id: Annotated[str, Number(1)] = ""
    status: Annotated[str, Number(2)] = ""
    log_level: Annotated[EnumField[LogLevel], Number(3)] = LogLevel.NONE
    timestamp: Annotated[Timestamp | None, Number(6)] = None
    type: Annotated[str, Number(7)] = ""


class TaskRequest(Message):
    """A task for a client: train, validate, predict..."""

    model_id: Annotated[str, Number(3)] = ""
    data: Annotated[str, Number(4)] = ""
    correlation_id: Annotated[str, Number(5)] = ""
    timestamp: Annotated[str, Number(6)] = ""
    session_id: Annotated[str, Number(8)] = ""
    round_id: Annotated[str, Number(10)] = ""
    type: Annotated[str, Number(11)] = ""
    status: Annotated[str, Number(12)] = ""
    client_id: Annotated[str, Number(1)] = ""


class TelemetryElem(Message):
    """One named telemetry value."""

    key: Annotated[str, Number(1)] = ""
    value: Annotated[Float32, Number(2)] = 0.0


class TelemetryMessage(Message):
    """A client's telemetry."""

    client_id: Annotated[str, Number(1)] = ""
    telemetries: Annotated[list[TelemetryElem], Number(2)] = []
    timestamp: Annotated[Timestamp | None, Number(3)] = None


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


class CombinerClientUpstream(CombinerClient, Protocol, name="scaleout.CombinerClient"):
    """:class:`CombinerClient` on its upstream path (package ``scaleout``), for protoc clients."""


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


class ModelServiceUpstream(ModelService, Protocol, name="scaleout.ModelService"):
    """:class:`ModelService` on its upstream path (package ``scaleout``), for generated clients."""
