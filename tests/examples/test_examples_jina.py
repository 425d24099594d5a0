"""The JinaRPC seed (004) end to end: index, cosine search, delete, control, arrays."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import msgspec
import numpy as np
import pytest

from transport import JsonCodec, bind
from transport.examples.jina import (
    DenseNdArrayProto,
    DocumentProto,
    JinaRPC,
    JinaRPCUpstream,
    JinaServer,
    JinaSession,
    NamedScoreProto,
    NdArrayProto,
    RequestProto,
    SparseNdArrayProto,
    StatusProto,
    from_numpy,
    protocol,
    to_numpy,
)
from transport.examples.jina.__main__ import main
from transport.testing import TestServer

Serve = Callable[..., TestServer]
Code = StatusProto.StatusCode
Control = RequestProto.ControlRequestProto
Mode = DenseNdArrayProto.QuantizationMode
REQUEST = JsonCodec(RequestProto)


@pytest.fixture
def pod() -> JinaServer:
    return JinaServer()


@pytest.fixture
def server(pod: JinaServer, transport_serve: Serve, client_wire: str) -> TestServer:
    return transport_serve(bind(JinaRPC, pod), bind(JinaRPCUpstream, pod), wire=client_wire)


def _doc(doc_id: str, vector: list[float], mode: Any = "NONE", **fields: Any) -> DocumentProto:
    embedding = from_numpy(np.array(vector, dtype=np.float32), mode)
    return DocumentProto(id=doc_id, embedding=embedding, **fields)


@pytest.mark.parametrize("mode", ["NONE", "FP16", "UINT8"])
def test_arrays_keep_dtype_and_shape_and_quantized_ones_dequantize(mode: Any) -> None:
    array = np.linspace(-2.0, 3.0, 24, dtype=np.float32).reshape(2, 3, 4)
    wire = JsonCodec(NdArrayProto).encode(from_numpy(array, mode))
    back = to_numpy(JsonCodec(NdArrayProto).decode(wire))
    assert back.dtype == np.float32 and back.shape == (2, 3, 4)
    assert np.abs(back - array).max() <= {"NONE": 0.0, "FP16": 2e-3, "UINT8": 0.02}[mode]


def test_arrays_quantized_by_another_peer_dequantize() -> None:
    # As Jina's array2pb writes them: dtype as numpy's dtype.str, value = code * scale + min.
    x = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    low, high = float(x.min()), float(x.max())
    scale = (high - low) / 255
    codes = np.rint((x - low) / scale).astype(np.uint8)
    dense = DenseNdArrayProto(
        buffer=codes.tobytes(), shape=[2, 2], dtype=codes.dtype.str, quantization=Mode.UINT8,
        max_val=high, min_val=low, scale=scale, original_dtype="float32",
    )  # fmt: skip
    restored = to_numpy(NdArrayProto(dense=dense))
    assert restored.dtype == np.float32
    assert np.allclose(restored, codes * scale + low) and np.abs(restored - x).max() <= scale
    half = x.astype(np.float16)
    fp16 = DenseNdArrayProto(
        buffer=half.tobytes(), shape=[2, 2], dtype="<f2", quantization=Mode.FP16,
        original_dtype="float64",
    )  # fmt: skip
    assert to_numpy(fp16).dtype == np.float64


def test_sparse_arrays_become_dense() -> None:
    array = np.zeros((3, 4), dtype=np.int16)
    array[1, 2], array[2, 0] = 7, -3
    proto = JsonCodec(NdArrayProto).decode(
        JsonCodec(NdArrayProto).encode(from_numpy(array, sparse=True))
    )
    assert proto.sparse is not None and proto.sparse.dense_shape == [3, 4]
    assert np.array_equal(to_numpy(proto), array) and to_numpy(proto).dtype == np.int16
    too_big = SparseNdArrayProto(
        indices=from_numpy(np.zeros((1, 2), np.int64)).dense,
        values=from_numpy(np.ones(1)).dense,
        dense_shape=[2**20, 2**20],
    )
    with pytest.raises(ValueError, match="larger than allowed"):
        to_numpy(NdArrayProto(sparse=too_big))
    outside = msgspec.structs.replace(
        too_big, dense_shape=[1, 1], indices=from_numpy(np.ones((1, 2), np.int64)).dense
    )
    with pytest.raises(ValueError, match="within denseShape"):
        to_numpy(NdArrayProto(sparse=outside))
    with pytest.raises(ValueError, match="neither dense nor sparse"):
        to_numpy(NdArrayProto())


def test_search_orders_matches_by_cosine_and_keeps_request_ids(
    server: TestServer, pod: JinaServer
) -> None:
    with JinaSession(server.client, timeout=10) as jina:
        docs = [_doc(f"d{i}", [1.0, i / 10, 0.0], "UINT8", tags={"i": i}) for i in range(15)]
        docs.append(_doc("far", [0.0, 0.0, 1.0], text="far away"))
        status = jina.index(docs)
        assert status is not None and status.code is Code.SUCCESS
        query = _doc("q", [1.0, 0.0, 0.0], adjacency=2)
        request = RequestProto(
            request_id="req-7", search=RequestProto.SearchRequestProto(docs=[query])
        )
        response = jina.request(request)
    assert response.request_id == "req-7" and response.search is not None
    (answer,) = response.search.docs
    assert [m.id for m in answer.matches] == [f"d{i}" for i in range(10)]
    scores = [m.score for m in answer.matches if m.score is not None]
    assert all(s.op_name == "cosine" and s.ref_id == "q" for s in scores)
    assert scores[0].value == pytest.approx(1.0, abs=1e-3)
    assert [s.value for s in scores] == sorted((s.value for s in scores), reverse=True)
    assert answer.matches[3].tags == {"i": 3} and answer.matches[3].adjacency == 3
    assert pod.calls.wait_for(0, timeout=5)


def test_documents_nest_and_tags_are_free_json(server: TestServer) -> None:
    leaf = DocumentProto(id="leaf", text="x", granularity=2)
    chunk = DocumentProto(id="chunk", chunks=[leaf], matches=[DocumentProto(id="m")])
    tags = {"source": "camera", "box": [1, 2.5, None], "nested": {"ok": True}}
    doc = _doc("root", [0.1, 0.2], chunks=[chunk], tags=tags, location=[3, 4], weight=0.5)
    with JinaSession(server.client, timeout=10) as jina:
        jina.index([doc])
        (answer,) = jina.search([_doc("q", [0.1, 0.2])])
    (match,) = answer.matches
    assert match.chunks[0].chunks[0] == leaf and match.chunks[0].matches[0].id == "m"
    assert match.tags == tags and match.location == [3, 4]


def test_delete_removes_documents(server: TestServer, pod: JinaServer) -> None:
    with JinaSession(server.client, timeout=10) as jina:
        jina.index([_doc("a", [1.0, 0.0]), _doc("b", [0.0, 1.0])])
        jina.delete(["a", "unknown"])
        (answer,) = jina.search([_doc("q", [1.0, 0.0])])
    assert [m.id for m in answer.matches] == ["b"]
    assert list(pod.docs) == ["b"]


def test_control_and_train(server: TestServer) -> None:
    with JinaSession(server.client, timeout=10) as jina:
        status = jina.status()
        assert status is not None and status.code is Code.READY
        terminate = RequestProto(request_id="t", control=Control(command=Control.Command.TERMINATE))
        assert jina.request(terminate).status == StatusProto(
            code=Code.ERROR_NOTALLOWED, description="TERMINATE over JinaRPC"
        )
        train = jina.request(RequestProto(request_id="tr", train=RequestProto.TrainRequestProto()))
        assert train.status is not None and train.status.code is Code.ERROR
        assert train.status.exception == StatusProto.ExceptionProto(
            name="NotImplementedError", args=["train"]
        )


def test_a_stream_of_requests_is_answered_in_order(server: TestServer) -> None:
    requests = [
        RequestProto(request_id=str(i), control=Control(command=Control.Command.STATUS))
        for i in range(20)
    ]
    responses = list(server.client.call(JinaRPC.Call, requests, timeout=10))
    assert [r.request_id for r in responses] == [str(i) for i in range(20)]


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        (b'{"requestId": "1"}', "one of train, index, search, control, delete, update"),
        (b'{"index": {}, "delete": {}}', "got index, delete"),
        (
            b'{"index": {"docs": [{"id": "a", "embedding": {"dense": '
            b'{"buffer": "AAAA", "shape": [2], "dtype": "float32"}}}]}}',
            "needs 8 - at `$.index.docs[0].embedding.dense`",
        ),
        (
            b'{"index": {"docs": [{"id": "a", "embedding": {"dense": '
            b'{"buffer": "AAAA", "shape": [2], "dtype": "uint16", "quantization": "FP8"}}}]}}',
            "Invalid enum value 'FP8' - at `$.index.docs[0].embedding.dense.quantization`",
        ),
        (b'{"index": {"docs": [{"text": "no id"}]}}', "index.docs[0].id"),
        (b'{"search": {"docs": [{"id": "q"}]}}', "search.docs[0].embedding"),
        (
            b'{"search": {"docs": [{"id": "q", "embedding": {"dense": '
            b'{"buffer": "AAAAAA==", "shape": [2], "dtype": "float16"}}}]}}',
            "the embedding has 2 values, the index holds 3",
        ),
        (
            b'{"index": {"docs": [{"id": "a", "embedding": {"dense": {"buffer": "AAE=", '
            b'"shape": [2], "dtype": "uint8", "quantization": 2, "originalDtype": "object"}}}]}}',
            "index.docs[0].embedding: originalDtype 'object' is not a numeric dtype",
        ),
        (
            b'{"index": {"docs": [{"id": "a", "embedding": {"dense": '
            b'{"buffer": "AAAAAAAAAAA=", "shape": [1], "dtype": "complex64"}}}]}}',
            "index.docs[0].embedding: a complex embedding",
        ),
        (
            b'{"index": {"docs": [{"id": "a", "embedding": {"dense": '
            b'{"buffer": "AADAfw==", "shape": [1], "dtype": "float32"}}}]}}',
            "NaN or infinity",
        ),
    ],
)
def test_bad_requests_are_invalid_argument_and_the_pod_keeps_serving(
    server: TestServer, wire: bytes, error: str
) -> None:
    with JinaSession(server.client, timeout=10) as jina:
        jina.index([_doc("x", [1.0, 2.0, 3.0])])
    raw: Any = server.client.channel.stream_stream("/JinaRPC/Call")
    with pytest.raises(grpc.RpcError) as caught:
        list(raw(iter([wire]), timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error in str(caught.value.details())
    with JinaSession(server.client, timeout=10) as jina:
        assert [m.id for m in jina.search([_doc("q", [1.0, 2.0, 3.0])])[0].matches] == ["x"]


def test_a_client_cancel_ends_the_call(server: TestServer, pod: JinaServer) -> None:
    session = JinaSession(server.client, timeout=10)
    session.status()
    assert pod.calls.count == 1
    with pytest.raises(LookupError), session:
        raise LookupError("the caller gave up")  # leaving with an exception cancels the stream
    assert pod.calls.wait_for(0, timeout=5)


def test_the_wire_follows_the_proto3_json_mapping() -> None:
    score = NamedScoreProto(value=0.5, op_name="cosine", ref_id="q")
    request = RequestProto(
        request_id="r",
        search=RequestProto.SearchRequestProto(docs=[DocumentProto(id="d", score=score)]),
        status=StatusProto(code=Code.READY),
    )
    assert REQUEST.encode(request) == (
        b'{"requestId":"r","search":{"docs":[{"id":"d","score":'
        b'{"value":0.5,"opName":"cosine","refId":"q"}}]},"status":{"code":"READY"}}'
    )
    assert REQUEST.decode(b'{"control": {"command": 1}}').control == Control(
        command=Control.Command.STATUS
    )


def test_demo_indexes_searches_and_asks_the_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["jina", "demo"])
    main()
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["cat", "dog", "car", "status"]
    assert out[-1] == "status READY"


def test_the_docs_show_the_declaration_as_written() -> None:
    readme = Path(__file__).resolve().parents[2] / "docs" / "seeds.md"
    section = readme.read_text().split("\n## Seed: JinaRPC\n")[1].split("\n## ")[0]
    found = re.search(r"```py\n(.*?)```", section, re.S)
    assert found is not None
    source = {line.rstrip() for line in Path(protocol.__file__).read_text().splitlines()}
    assert [line for line in found.group(1).splitlines() if line and line not in source] == []
