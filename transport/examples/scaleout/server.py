"""The reference combiner and model store of Scaleout Edge."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from transport import Context, Message, RpcError, StatusCode

from .._in_flight import CallsInFlight
from .protocol import (
    CHUNK_SIZE,
    ActivityReport,
    AttributeMessage,
    ClientAnnounceRequest,
    ClientAvailableMessage,
    FileChunk,
    Heartbeat,
    ModelMetric,
    ModelPrediction,
    ModelRequest,
    ModelResponse,
    ModelStatus,
    ModelUpdate,
    ModelValidation,
    Response,
    Status,
    TaskRequest,
    TelemetryMessage,
    file_chunks,
)
from .tasks import TaskQueues

__all__ = ["CombinerServer", "ModelStore"]


def _needs(value: str, field: str) -> str:
    if not value:
        raise RpcError(StatusCode.INVALID_ARGUMENT, f"{field} must not be empty", {"field": field})
    return value


class CombinerServer:
    """Serves ``CombinerClient``: records what clients send and hands out their tasks.

    :meth:`queue_task` is the server-side API that gives a client work; it
    reaches the client on its ``TaskStream`` or on its next ``PollAndReport``.
    """

    def __init__(self) -> None:
        self.tasks = TaskQueues()
        self.task_streams = CallsInFlight()
        self._lock = threading.Lock()
        self.clients: dict[str, ClientAnnounceRequest] = {}
        self.received: list[Message] = []

    def queue_task(self, task: TaskRequest) -> None:
        """Queue ``task`` for the client named in its ``clientId``."""
        self.tasks.put(_needs(task.client_id, "clientId"), task)

    def _record(self, message: Message, client_id: str, reply: str) -> Response:
        _needs(client_id, "clientId")
        with self._lock:
            self.received.append(message)
        return Response(response=reply)

    def Announce(self, request: ClientAnnounceRequest, context: Context) -> Response:
        """Register a client."""
        response = self._record(request, request.client_id, f"client {request.client_id} joined")
        with self._lock:
            self.clients[request.client_id] = request
        return response

    def SendHeartbeat(self, request: Heartbeat, context: Context) -> Response:
        """Acknowledge a heartbeat."""
        return self._record(request, request.client_id, "Heartbeat received")

    def SendStatus(self, request: Status, context: Context) -> Response:
        """Record a status report."""
        return self._record(request, request.client_id, f"Status {request.log_level.name} received")

    def SendModelUpdate(self, request: ModelUpdate, context: Context) -> Response:
        """Record a model update."""
        return self._record(request, request.client_id, "ModelUpdate received")

    def SendModelValidation(self, request: ModelValidation, context: Context) -> Response:
        """Record a model validation."""
        return self._record(request, request.client_id, "ModelValidation received")

    def SendModelPrediction(self, request: ModelPrediction, context: Context) -> Response:
        """Record a model prediction."""
        return self._record(request, request.client_id, "ModelPrediction received")

    def SendModelMetric(self, request: ModelMetric, context: Context) -> Response:
        """Record model metrics."""
        return self._record(request, request.client_id, "ModelMetric received")

    def SendAttributeMessage(self, request: AttributeMessage, context: Context) -> Response:
        """Record client attributes."""
        return self._record(request, request.client_id, "AttributeMessage received")

    def SendTelemetryMessage(self, request: TelemetryMessage, context: Context) -> Response:
        """Record telemetry."""
        return self._record(request, request.client_id, "TelemetryMessage received")

    def PollAndReport(self, request: ActivityReport, context: Context) -> TaskRequest:
        """Record the report; return the node's next task, or an empty one."""
        self._record(request, request.node_id, "")
        return self.tasks.poll(request.node_id) or TaskRequest()

    def TaskStream(
        self, request: ClientAvailableMessage, context: Context
    ) -> Iterator[TaskRequest]:
        """Deliver the client's tasks as they are queued, until the client cancels."""
        client_id = _needs(request.client_id, "clientId")
        with self.task_streams.track():
            # The call's end (cancel, deadline, server stop) wakes the wait below.
            context.add_done_callback(self.tasks.wake)
            while True:
                task = self.tasks.take(client_id, stopped=lambda: not context.is_active())
                if task is None:
                    return
                yield task


class ModelStore:
    """Serves ``ModelService``: model files by id, in memory."""

    def __init__(self, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size
        self._lock = threading.Lock()
        self.models: dict[str, bytes] = {}

    def Upload(self, requests: Iterator[FileChunk], context: Context) -> ModelResponse:
        """Store the concatenated chunks under the request metadata ``model-id``."""
        model_id = context.metadata_value("model-id")
        if not isinstance(model_id, str) or not model_id:
            raise RpcError(
                StatusCode.INVALID_ARGUMENT,
                "Upload needs the model id in request metadata model-id",
            )
        data = b"".join(chunk.data for chunk in requests)
        with self._lock:
            self.models[model_id] = data
        return ModelResponse(
            status=ModelStatus.OK, message=f"stored {len(data)} bytes as {model_id}"
        )

    def Download(self, request: ModelRequest, context: Context) -> Iterator[FileChunk]:
        """Stream a stored model in chunks of at most ``chunk_size`` bytes."""
        model_id = _needs(request.model_id, "modelId")
        with self._lock:
            data = self.models.get(model_id)
        if data is None:
            raise RpcError(StatusCode.NOT_FOUND, f"no model {model_id!r}", {"modelId": model_id})
        yield from file_chunks(data, self.chunk_size)
