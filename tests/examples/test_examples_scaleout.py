"""The Scaleout Edge seed (002) end to end: the combiner, TaskStream, model up/download."""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import grpc
import pytest

from transport import Message, RpcError, StatusCode, bind
from transport.examples.scaleout import (
    CHUNK_SIZE,
    ActivityReport,
    AttributeElem,
    AttributeMessage,
    ClientAnnounceRequest,
    ClientAvailableMessage,
    CombinerClient,
    CombinerClientUpstream,
    CombinerServer,
    FileChunk,
    Heartbeat,
    LogLevel,
    MetricElem,
    ModelMetric,
    ModelPrediction,
    ModelRequest,
    ModelService,
    ModelServiceUpstream,
    ModelStatus,
    ModelStore,
    ModelUpdate,
    ModelValidation,
    Response,
    Status,
    TaskQueues,
    TaskRequest,
    TelemetryElem,
    TelemetryMessage,
    download_model,
    protocol,
    upload_model,
)
from transport.examples.scaleout.__main__ import main
from transport.testing import TestServer, serve

Serve = Callable[..., TestServer]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def combiner() -> CombinerServer:
    return CombinerServer()


@pytest.fixture
def server(combiner: CombinerServer, transport_serve: Serve, client_wire: str) -> TestServer:
    store = ModelStore()
    return transport_serve(
        bind(CombinerClient, combiner),
        bind(ModelService, store),
        bind(CombinerClientUpstream, combiner),
        bind(ModelServiceUpstream, store),
        wire=client_wire,
    )


REPORTS: list[tuple[str, Message, str]] = [
    ("Announce", ClientAnnounceRequest(client_id="c1", type="edge"), "client c1 joined"),
    ("SendHeartbeat", Heartbeat(client_id="c1", cpu_utilisation=0.5), "Heartbeat received"),
    ("SendStatus", Status(client_id="c1", log_level=LogLevel.AUDIT), "Status AUDIT received"),
    ("SendModelUpdate", ModelUpdate(client_id="c1", timestamp=NOW), "ModelUpdate received"),
    ("SendModelValidation", ModelValidation(client_id="c1"), "ModelValidation received"),
    ("SendModelPrediction", ModelPrediction(client_id="c1"), "ModelPrediction received"),
    (
        "SendModelMetric",
        ModelMetric(client_id="c1", metrics=[MetricElem(key="loss", value=0.5)], step=0),
        "ModelMetric received",
    ),
    (
        "SendAttributeMessage",
        AttributeMessage(client_id="c1", attributes=[AttributeElem(key="gpu", value="no")]),
        "AttributeMessage received",
    ),
    (
        "SendTelemetryMessage",
        TelemetryMessage(client_id="c1", telemetries=[TelemetryElem(key="t", value=1.0)]),
        "TelemetryMessage received",
    ),
]


@pytest.mark.parametrize(("method", "message", "reply"), REPORTS, ids=[r[0] for r in REPORTS])
def test_each_report_is_recorded_and_acknowledged(
    server: TestServer, combiner: CombinerServer, method: str, message: Message, reply: str
) -> None:
    handle: Any = getattr(CombinerClient, method)
    assert server.client.call(handle, message) == Response(response=reply)
    assert combiner.received == [message]


def test_a_report_without_a_client_id_is_invalid_argument(
    server: TestServer, combiner: CombinerServer
) -> None:
    with pytest.raises(RpcError) as caught:
        server.client.call(CombinerClient.SendHeartbeat, Heartbeat(cpu_utilisation=0.1))
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert caught.value.details == {"field": "clientId"}
    assert combiner.received == []


def test_the_wire_uses_enum_names_timestamps_and_plain_wrappers(server: TestServer) -> None:
    raw: Any = server.client.channel.unary_unary("/CombinerClient/SendStatus")
    wire = b'{"clientId": "c1", "logLevel": 3, "timestamp": "2026-11-22T12:00:00Z"}'
    assert raw(wire) == b'{"response":"Status WARNING received"}'
    codec = CombinerClient.SendModelMetric.request_codec
    assert codec.encode(ModelMetric(client_id="c", step=0, timestamp=NOW)) == (
        b'{"clientId":"c","timestamp":"2026-11-22T12:00:00Z","step":0}'
    )
    assert codec.decode(b'{"clientId": "c"}').step is None
    for bad, where in (
        (b'{"clientId": "c1", "logLevel": "LOUD"}', "$.logLevel"),
        (b'{"clientId": "c1", "timestamp": "yesterday"}', "$.timestamp"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            raw(bad)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert where in str(caught.value.details())


def test_task_stream_delivers_the_client_tasks_in_order_until_cancelled(
    server: TestServer, combiner: CombinerServer
) -> None:
    combiner.queue_task(TaskRequest(client_id="c1", type="training", round_id="1"))
    combiner.queue_task(TaskRequest(client_id="c2", type="other"))
    stream = server.client.call(CombinerClient.TaskStream, ClientAvailableMessage(client_id="c1"))
    with stream:
        assert next(stream).round_id == "1"
        assert combiner.task_streams.wait_for(1, timeout=5)
        combiner.queue_task(TaskRequest(client_id="c1", type="validation", round_id="2"))
        assert next(stream).round_id == "2"
    # Leaving the with block cancelled the call: the handler has returned.
    assert combiner.task_streams.wait_for(0, timeout=5)
    assert combiner.tasks.pending("c2") == 1


def test_task_stream_ends_at_its_deadline(server: TestServer, combiner: CombinerServer) -> None:
    request = ClientAvailableMessage(client_id="c1")
    with pytest.raises(RpcError) as caught:
        list(server.client.call(CombinerClient.TaskStream, request, timeout=0.2))
    assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
    assert combiner.task_streams.wait_for(0, timeout=5)


def test_stopping_the_server_ends_open_task_streams() -> None:
    combiner = CombinerServer()
    with serve(bind(CombinerClient, combiner)) as test_server:
        stream = test_server.client.call(
            CombinerClient.TaskStream, ClientAvailableMessage(client_id="c1")
        )
        assert combiner.task_streams.wait_for(1, timeout=5)
    assert combiner.task_streams.wait_for(0, timeout=5)
    with pytest.raises(RpcError):
        next(stream)


def test_task_stream_needs_a_client_id(server: TestServer) -> None:
    with pytest.raises(RpcError) as caught:
        list(server.client.call(CombinerClient.TaskStream, ClientAvailableMessage()))
    assert caught.value.code is StatusCode.INVALID_ARGUMENT


def test_poll_and_report_takes_the_next_task_or_an_empty_one(
    server: TestServer, combiner: CombinerServer
) -> None:
    combiner.queue_task(TaskRequest(client_id="n1", type="training"))
    report = ActivityReport(node_id="n1", status="idle", done=True)
    assert server.client.call(CombinerClient.PollAndReport, report).type == "training"
    assert server.client.call(CombinerClient.PollAndReport, report) == TaskRequest()
    assert combiner.received == [report, report]


def test_a_model_goes_up_and_comes_down_in_chunks_of_at_most_one_mib(server: TestServer) -> None:
    model = bytes(range(256)) * (10 * 1024 + 7)  # about 2.5 MiB
    reply = upload_model(server.client, "m1", model, chunk_size=300_000, timeout=10)
    assert reply.status is ModelStatus.OK and str(len(model)) in reply.message
    chunks = list(server.client.call(ModelService.Download, ModelRequest(model_id="m1")))
    assert [len(c.data) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, len(model) - 2 * CHUNK_SIZE]
    assert download_model(server.client, "m1", timeout=10) == model
    assert upload_model(server.client, "empty", b"").status is ModelStatus.OK
    assert download_model(server.client, "empty") == b""


def test_model_errors(server: TestServer) -> None:
    with pytest.raises(RpcError) as caught:
        download_model(server.client, "nope")
    assert caught.value.code is StatusCode.NOT_FOUND
    assert caught.value.details == {"modelId": "nope"}
    with pytest.raises(RpcError) as caught:
        server.client.call(ModelService.Upload, [FileChunk(data=b"x")])
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert "model-id" in caught.value.message
    raw: Any = server.client.channel.stream_unary("/ModelService/Upload")
    with pytest.raises(grpc.RpcError) as raw_caught:
        raw(iter([b'{"data": "not base64!"}']), metadata=[("model-id", "m")])
    assert raw_caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raw(iter([b'{"data": "AAE="}']), metadata=[("model-id", "m")]) == (
        b'{"status":"OK","message":"stored 2 bytes as m"}'
    )


def test_task_queues_wait_for_a_task_or_a_stop() -> None:
    queues = TaskQueues()
    stop = threading.Event()
    taken: list[TaskRequest | None] = []
    taker = threading.Thread(target=lambda: taken.append(queues.take("c", stop.is_set)))
    taker.start()
    queues.put("c", TaskRequest(client_id="c", type="t"))
    taker.join(timeout=5)
    assert taken == [TaskRequest(client_id="c", type="t")]
    taker = threading.Thread(target=lambda: taken.append(queues.take("c", stop.is_set)))
    taker.start()
    stop.set()
    queues.wake()
    taker.join(timeout=5)
    assert not taker.is_alive() and taken[-1] is None


def test_demo_reports_takes_tasks_and_moves_a_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["scaleout", "demo"])
    main()
    out = capsys.readouterr().out.splitlines()
    assert "task training model-1" in out and "task validation model-1" in out
    assert out[-1] == "downloaded 2560000 bytes"


def test_the_docs_show_the_declaration_as_written() -> None:
    readme = Path(__file__).resolve().parents[2] / "docs" / "seeds.md"
    section = (
        readme.read_text()
        .split("\n## Seed: Scaleout Edge (CombinerClient, ModelService)\n")[1]
        .split("\n## ")[0]
    )
    found = re.search(r"```py\n(.*?)```", section, re.S)
    assert found is not None
    source = {line.rstrip() for line in Path(protocol.__file__).read_text().splitlines()}
    assert [line for line in found.group(1).splitlines() if line and line not in source] == []
