"""Each example's ``serve`` command in a subprocess, spoken to with raw JSON bytes.

No typed client here: these tests pin the wire format (names, enums, bytes,
oneof keys) that a peer in another language would see.
"""

from __future__ import annotations

import base64
import json
import queue
import re
import selectors
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

pytestmark = pytest.mark.slow

_DONE = b""  # ends a request queue


@contextmanager
def served(example: str, *args: str) -> Iterator[grpc.Channel]:
    """Run ``python -m transport.examples.<example> serve --port 0 ...``; yield a channel to it."""
    command = [sys.executable, "-m", f"transport.examples.{example}", "serve", "--port", "0"]
    process = subprocess.Popen(
        [*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=30), "the server printed nothing within 30 s"
        first = process.stdout.readline()
        found = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", first)
        assert found, f"unexpected first line {first!r}"
        with grpc.insecure_channel(f"127.0.0.1:{found.group(1)}") as channel:
            yield channel
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr


def _json(data: bytes) -> Any:
    return json.loads(data)


def _requests(outbox: queue.SimpleQueue[bytes]) -> Iterator[bytes]:
    return iter(outbox.get, _DONE)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_migrator_wire(tmp_path: Path) -> None:
    source, state = tmp_path / "source", tmp_path / "state"
    (source / "weights").mkdir(parents=True)
    (source / "weights" / "w.bin").write_bytes(b"w")
    (state / "old").mkdir(parents=True)
    (state / "old" / "a.txt").write_text("a")
    with served("migrator", "--state", str(state), "--ingest", "weights:model/weights") as channel:
        export: Any = channel.unary_unary("/t1.fps.model.Migrator/Export")
        assert _json(export(b"{}", timeout=10)) == {"paths": ["old/a.txt"]}

        ingest: Any = channel.stream_stream("/t1.fps.model.Migrator/Ingest")
        outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        call = ingest(_requests(outbox), timeout=10)
        copy = _json(next(call))
        assert copy == {"sourcePath": "weights", "destPath": str(state / "model" / "weights")}
        shutil.copytree(source / copy["sourcePath"], copy["destPath"])
        outbox.put(json.dumps({**copy, "error": ""}).encode())
        assert list(call) == []  # the server ends the stream once every copy is answered
        outbox.put(_DONE)
        assert _json(export(b"{}", timeout=10))["paths"] == ["model/weights/w.bin", "old/a.txt"]

        outbox = queue.SimpleQueue()
        call = ingest(_requests(outbox), timeout=10)
        next(call)
        outbox.put(b'{"sourcePath": "elsewhere", "destPath": "/etc/passwd"}')
        with pytest.raises(grpc.RpcError) as caught:
            next(call)
        outbox.put(_DONE)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_runner_wire() -> None:
    with served("runner") as channel:
        engage: Any = channel.stream_stream("/RunnerProtocol/Engage")
        status: Any = channel.unary_unary("/RunnerProtocol/Status")
        outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        call = engage(_requests(outbox), timeout=10)
        outbox.put(b'{"try": {"modelsCallJson": "{\\"fn\\": \\"upper\\"}", "slotHashId": "s"}}')
        call.initial_metadata()  # the runner sends its headers once it has taken the call
        idle = _json(status(b"{}", timeout=10))
        # While the call is open, Status counts it (0 would be left out, as a default).
        assert idle["active"] == 1 and idle["createdAt"].endswith("Z")
        outbox.put(json.dumps({"data": {"data": _b64(b"hi, "), "eof": False}}).encode())
        outbox.put(json.dumps({"data": {"data": _b64(b"runner"), "eof": True}}).encode())
        start, *frames, finished = [_json(reply) for reply in call]
        outbox.put(_DONE)
        assert start == {
            "resultStart": {
                "http": {
                    "statusCode": 200,
                    "headers": [
                        {"key": "Content-Type", "value": "application/octet-stream"},
                        {"key": "Content-Length", "value": "10"},
                    ],
                }
            }
        }
        assert frames == [{"data": {"data": _b64(b"HI, RUNNER"), "eof": True}}]
        assert finished["finished"]["success"] is True
        assert {"createdAt", "startedAt", "completedAt"} <= set(finished["finished"])
        assert "active" not in _json(status(b"{}", timeout=10))

        failed = [
            _json(reply)
            for reply in engage(
                iter(
                    [
                        b'{"try": {"modelsCallJson": "{\\"fn\\": \\"fail\\"}"}}',
                        b'{"data": {"eof": true}}',
                    ]
                ),
                timeout=10,
            )
        ]
        assert [set(reply) for reply in failed] == [{"finished"}]
        assert failed[0]["finished"]["errorCode"] == 502 and failed[0]["finished"]["errorStr"]

        with pytest.raises(grpc.RpcError) as caught:
            list(engage(iter([b'{"data": {"eof": true}}']), timeout=10))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_scaleout_wire() -> None:
    with served("scaleout") as channel:
        send_status: Any = channel.unary_unary("/CombinerClient/SendStatus")
        request = {"clientId": "c", "logLevel": "ERROR", "timestamp": "2026-11-22T12:00:00Z"}
        reply = send_status(json.dumps(request).encode(), timeout=10)
        assert _json(reply) == {"response": "Status ERROR received"}
        assert _json(send_status(b'{"clientId": "c", "logLevel": 2}', timeout=10)) == {
            "response": "Status DEBUG received"
        }
        with pytest.raises(grpc.RpcError) as caught:
            send_status(b'{"clientId": "c", "logLevel": "LOUD"}', timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "$.logLevel" in str(caught.value.details())

        metric: Any = channel.unary_unary("/CombinerClient/SendModelMetric")
        wire = b'{"clientId": "c", "metrics": [{"key": "loss", "value": 0.5}], "step": 0}'
        assert _json(metric(wire, timeout=10)) == {"response": "ModelMetric received"}
        poll: Any = channel.unary_unary("/CombinerClient/PollAndReport")
        assert poll(b'{"nodeId": "c", "done": true}', timeout=10) == b"{}"

        tasks: Any = channel.unary_stream("/CombinerClient/TaskStream")
        with pytest.raises(grpc.RpcError) as caught:
            list(tasks(b'{"clientId": "c"}', timeout=0.3))  # long-lived: no task, no end
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        upload: Any = channel.stream_unary("/ModelService/Upload")
        model = bytes(range(256)) * 5000  # 1.22 MiB
        chunks = [
            json.dumps({"data": _b64(model[i : i + 500_000])}).encode()
            for i in (0, 500_000, 1_000_000)
        ]
        reply = upload(iter(chunks), metadata=[("model-id", "m")], timeout=10)
        assert _json(reply) == {"status": "OK", "message": f"stored {len(model)} bytes as m"}
        download: Any = channel.unary_stream("/ModelService/Download")
        pieces = [
            base64.b64decode(_json(c)["data"]) for c in download(b'{"modelId": "m"}', timeout=10)
        ]
        assert [len(p) for p in pieces] == [1024 * 1024, len(model) - 1024 * 1024]
        assert b"".join(pieces) == model
        with pytest.raises(grpc.RpcError) as caught:
            list(download(b'{"modelId": "nope"}', timeout=10))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def _embedding(values: list[float]) -> dict[str, Any]:
    array = np.array(values, dtype="<f4")
    return {"dense": {"buffer": _b64(array.tobytes()), "shape": [len(values)], "dtype": "float32"}}


def test_jina_wire() -> None:
    with served("jina") as channel:
        call: Any = channel.stream_stream("/JinaRPC/Call")
        index = {
            "requestId": "i1",
            "index": {
                "docs": [
                    {"id": "a", "embedding": _embedding([1, 0]), "tags": {"k": [1, "x"]}},
                    {"id": "b", "embedding": _embedding([0, 1])},
                    {"id": "c", "embedding": _embedding([1, 1]), "chunks": [{"id": "c.1"}]},
                ]
            },
        }
        search = {
            "requestId": "s1",
            "search": {"docs": [{"id": "q", "embedding": _embedding([1, 0.1])}]},
        }
        controls = [
            {"requestId": "c1", "control": {"command": "STATUS"}},
            {"requestId": "c2", "control": {"command": 1}},
        ]
        wire = [json.dumps(r).encode() for r in (index, search, *controls)]
        indexed, searched, *statuses = [_json(r) for r in call(iter(wire), timeout=10)]

    assert indexed["requestId"] == "i1" and indexed["status"] == {}  # SUCCESS is the default
    assert indexed["index"] == index["index"]
    assert searched["requestId"] == "s1"
    (answer,) = searched["search"]["docs"]
    matches = answer["matches"]
    assert [m["id"] for m in matches] == ["a", "c", "b"]
    assert matches[0]["tags"] == {"k": [1, "x"]} and matches[1]["chunks"] == [{"id": "c.1"}]
    assert matches[0]["adjacency"] == 1
    assert matches[0]["score"]["opName"] == "cosine" and matches[0]["score"]["refId"] == "q"
    assert matches[0]["score"]["value"] == pytest.approx(1 / np.hypot(1, 0.1))
    assert [s["requestId"] for s in statuses] == ["c1", "c2"]
    assert all(s["status"]["code"] == "READY" for s in statuses)
    assert statuses[1]["control"] == {"command": "STATUS"}
