"""Hostile array headers: documented dtypes only, bounded shapes, frames and sparse arrays.

Each case ends INVALID_ARGUMENT or RESOURCE_EXHAUSTED, never UNKNOWN, never
memory read from the server, never an allocation out of proportion to the
request.
"""

from __future__ import annotations

import base64
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any, Protocol

import grpc
import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transport import Context, JsonCodec, Message, Service, bind, quantize, rpc
from transport._status_map import status_of
from transport.encoding import frames as attachments
from transport.encoding.chunks import Chunk, join_array
from transport.encoding.json_codec import _dec_hook, _enc_hook
from transport.encoding.ndarray import MAX_DIMS, QUANTIZED_GROWTH, encode_ndarray
from transport.errors import ChunkError, DecodeError
from transport.examples.jina import (
    MAX_SPARSE_ELEMENTS,
    DocumentProto,
    JinaRPC,
    JinaServer,
    RequestProto,
    from_numpy,
)
from transport.status import StatusCode
from transport.testing import TestServer, serve


class Tensor(Message):
    name: str = ""
    array: np.ndarray | None = None


class Tensors(Service, Protocol, name="test.hostile.Tensors"):
    @rpc
    def Echo(self, request: Tensor) -> Tensor: ...


class EchoTensors:
    def Echo(self, request: Tensor, context: Context) -> Tensor:
        return request


CODEC = JsonCodec(Tensor)


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with serve(bind(Tensors, EchoTensors())) as running:
        yield running


def _array(**fields: Any) -> dict[str, Any]:
    array: dict[str, Any] = {"dtype": "float16", "shape": [4], "data": base64.b64encode(bytes(8))}
    array["data"] = array["data"].decode()
    array.update(fields)
    return {k: v for k, v in array.items() if v is not None}


def _call(server: TestServer, array: dict[str, Any]) -> grpc.RpcError:
    raw: Any = server.client.channel.unary_unary("/test.hostile.Tensors/Echo")
    with pytest.raises(grpc.RpcError) as caught:
        raw(json.dumps({"array": array}).encode(), timeout=10)
    return caught.value


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quantization": "FP16", "originalDtype": "float128"}, "originalDtype 'float128'"),
        ({"quantization": "FP16", "originalDtype": "complex256"}, "originalDtype 'complex256'"),
        ({"quantization": "FP16", "originalDtype": "V16"}, "originalDtype 'V16'"),
        ({"quantization": "FP16", "originalDtype": "complex64"}, "originalDtype 'complex64'"),
        ({"dtype": "uint8", "shape": [8], "quantization": "UINT8", "scale": 1.0, "minVal": 0.0,
          "originalDtype": "longdouble"}, "originalDtype 'longdouble'"),
        ({"dtype": "float128", "shape": [0]}, "dtype 'float128'"),
        ({"dtype": "f16", "shape": [0]}, "dtype 'f16'"),
        ({"dtype": "(1000000000,)f4", "shape": [0]}, "dtype '(1000000000,)f4'"),
        ({"dtype": "float32", "quantization": "FP16"}, "FP16 quantization needs dtype float16"),
        ({"dtype": "uint8", "shape": [8], "quantization": "UINT8", "scale": 2.1e36, "minVal": 0.0,
          "originalDtype": "float32"}, "outside the range of float32"),
        ({"dtype": "uint8", "shape": [8], "quantization": "UINT8", "scale": 1e306,
          "minVal": 1.7e308, "originalDtype": "float64"}, "outside the range of float64"),
    ],
)  # fmt: skip
def test_only_documented_dtypes_decode(server: TestServer, fields: Any, field: str) -> None:
    error = _call(server, _array(**fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in str(error.details()) and "at `$.array`" in str(error.details())


def test_a_dequantized_array_is_fully_initialised(server: TestServer) -> None:
    # The padding of float128 was what leaked; every documented original is dense.
    for original in ("float16", "float32", "float64", "int64", "uint8", "bool"):
        array = _array(quantization="FP16", originalDtype=original)
        raw: Any = server.client.channel.unary_unary("/test.hostile.Tensors/Echo")
        reply = json.loads(raw(json.dumps({"array": array}).encode(), timeout=10))
        assert base64.b64decode(reply["array"]["data"]) == bytes(4 * np.dtype(original).itemsize), (
            original
        )


def test_encode_refuses_what_it_cannot_fully_initialise() -> None:
    with pytest.raises(TypeError, match="only numeric dtypes travel"):
        encode_ndarray(np.zeros(2, dtype=np.longdouble))
    with pytest.raises(TypeError, match="only numeric dtypes travel"):
        encode_ndarray(np.zeros(2, dtype=np.clongdouble))
    with pytest.raises(TypeError, match="cannot quantize an array of dtype complex64"):
        encode_ndarray(quantize(np.zeros(2, dtype=np.complex64), "FP16"))


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ([4294967295] * 40_000, "shape has 40000 dimensions, more than 32"),
        ([1] * (MAX_DIMS + 1), "more than 32"),
        ([2] + [1] * (MAX_DIMS - 1), "needs 4"),
        ([-1, -4], "negative dimension"),
        ([0, 2**62, 2**62], "holds more than"),
        ([2**63], "holds more than"),
        ([2**32] * 32, "holds more than"),
    ],
)
def test_shapes_are_checked_before_any_allocation(
    server: TestServer, shape: list[int], message: str
) -> None:
    error = _call(server, _array(shape=shape, dtype="float16", data=""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in str(error.details())


def test_an_empty_array_of_many_dimensions_decodes() -> None:
    back = CODEC.decode(json.dumps({"array": _array(shape=[0, 7, 2**20], data="")}).encode())
    assert back.array is not None and back.array.shape == (0, 7, 2**20)


def _measured(decode: Any, payload: bytes) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = decode(payload)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "fields",
    [
        {"dtype": "uint8", "quantization": "UINT8", "scale": 0.5, "minVal": -1.0,
         "originalDtype": "float64"},
        {"dtype": "float16", "quantization": "FP16", "originalDtype": "float64"},
        {"dtype": "uint8", "quantization": "UINT8", "scale": 0.5, "minVal": -1.0,
         "originalDtype": "float32"},
    ],
)  # fmt: skip
def test_a_quantized_array_decodes_within_its_budget(fields: dict[str, Any]) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    count = len(data) // np.dtype(fields["dtype"]).itemsize
    payload = json.dumps(
        {"array": _array(shape=[count], data=base64.b64encode(data).decode(), **fields)}
    ).encode()
    message, peak = _measured(CODEC.decode, payload)
    assert message.array.nbytes <= QUANTIZED_GROWTH * len(data)
    # The dequantized array, the decoded bytes, the base64 text and a chunk: no more.
    assert peak <= message.array.nbytes + 3 * len(payload)


def _frame(references: list[dict[str, Any]], buffer: bytes, names: list[str]) -> bytes:
    message = {
        "name": "",
        "array": {"dtype": "uint8", "shape": [len(buffer)], "data": None},
        **{n: None for n in names},
    }
    header = json.dumps({"message": message, "attachments": references}).encode()
    frame = attachments.MAGIC + len(header).to_bytes(4, "little") + header
    return frame + bytes(-len(frame) % 16) + buffer


def test_frame_references_must_lie_inside_the_frame_and_not_overlap(server: TestServer) -> None:
    buffer = bytes(attachments.FRAME_BYTES)  # large enough that the echo is framed too
    whole = {"path": ["array", "data"], "offset": 0, "length": len(buffer)}
    cases = {
        "overlaps the one before it": [whole, {"path": ["name"], "offset": 16, "length": 8}],
        "after the frame": [{"path": ["array", "data"], "offset": 16, "length": len(buffer)}],
    }
    raw: Any = server.client.channel.unary_unary("/test.hostile.Tensors/Echo")
    for message, references in cases.items():
        with pytest.raises(grpc.RpcError) as caught:
            raw(_frame(references, buffer, []), metadata=[attachments.ANNOUNCEMENT], timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in str(caught.value.details())
    reply = raw(_frame([whole], buffer, []), metadata=[attachments.ANNOUNCEMENT], timeout=10)
    assert reply.startswith(attachments.MAGIC)


def test_a_frame_header_is_bounded_and_the_encoder_falls_back_to_json() -> None:
    class Wide(Message):
        blob: bytes = b""
        words: list[str] = []

    wide = Wide(blob=bytes(4096), words=["w" * 100] * 3000)  # 300 KB beside the buffer
    encoded = attachments.encode_framed(wide, _enc_hook)
    assert encoded.startswith(b"{")
    assert JsonCodec(Wide).decode_framed(encoded) == wide
    header = json.dumps({"message": {"words": ["w" * 100] * 3000}, "attachments": []}).encode()
    frame = attachments.MAGIC + len(header).to_bytes(4, "little") + header
    with pytest.raises(msgspec.ValidationError, match=r"header of \d+ bytes is over"):
        attachments.decode_framed(frame, Wide, _dec_hook)


# -- the Jina example's sparse arrays and index -----------------------------------------


def _sparse(dense_shape: list[int], doc_id: str = "a") -> dict[str, Any]:
    indices = from_numpy(np.zeros((0, len(dense_shape)), np.int64)).dense
    values = from_numpy(np.zeros(0, np.float32)).dense
    sparse = {
        "indices": msgspec.to_builtins(indices),
        "values": msgspec.to_builtins(values),
        "denseShape": dense_shape,
    }
    return {"id": doc_id, "embedding": {"sparse": sparse}}


def _jina(server: TestServer, docs: list[dict[str, Any]]) -> grpc.RpcError:
    raw: Any = server.client.channel.stream_stream("/JinaRPC/Call")
    wire = json.dumps({"index": {"docs": docs}}).encode()
    with pytest.raises(grpc.RpcError) as caught:
        list(raw(iter([wire]), timeout=10))
    return caught.value


@pytest.fixture
def pod() -> JinaServer:
    return JinaServer(max_elements=1000)


@pytest.fixture
def jina(pod: JinaServer) -> Iterator[TestServer]:
    with serve(bind(JinaRPC, pod)) as running:
        yield running


def test_a_huge_dense_shape_is_invalid_argument_not_unknown(jina: TestServer) -> None:
    for shape in ([2**62] * 20, [2**62, 2**62], [16_777_216], [-1], [1] * 40_000):
        error = _jina(jina, [_sparse(shape)])
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, shape
        assert "index.docs[0].embedding: denseShape" in str(error.details())


def test_sparse_arrays_share_one_budget_per_request(jina: TestServer) -> None:
    docs = [_sparse([MAX_SPARSE_ELEMENTS], f"d{i}") for i in range(5)]
    error = _jina(jina, docs)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the embeddings hold over" in str(error.details())


def test_the_index_has_a_budget(jina: TestServer, pod: JinaServer) -> None:
    vector = np.ones(400, np.float32)
    docs = [DocumentProto(id=f"d{i}", embedding=from_numpy(vector)) for i in range(2)]
    assert pod.handle(RequestProto(index=RequestProto.IndexRequestProto(docs=docs)))
    third = [msgspec.to_builtins(DocumentProto(id="d3", embedding=from_numpy(vector)))]
    error = _jina(jina, third)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the index would hold over 1000 embedding values" in str(error.details())
    # Replacing a document frees its vector first; deleting frees it too.
    assert pod.handle(RequestProto(update=RequestProto.UpdateRequestProto(docs=docs[:1])))
    pod.handle(RequestProto(delete=RequestProto.DeleteRequestProto(docs=docs[:1])))
    assert pod.handle(RequestProto(index=RequestProto.IndexRequestProto(docs=docs[:1])))


# -- the property over the array header -------------------------------------------------

DTYPES = st.sampled_from(
    ["float16", "float32", "float64", "uint8", "int64", "bool", "complex128", "<f8", ">i4",
     "float128", "complex256", "object", "V8", "S4", "M8[s]", "f16", "", "x" * 100]
)  # fmt: skip
DIM = st.one_of(st.integers(-2, 8), st.sampled_from([2**31, 2**32 - 1, 2**62, 2**63, 2**64 - 1]))


@st.composite
def headers(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A JSON or frame payload for ``Tensor``, and whether it is a frame."""
    array: dict[str, Any] = {
        "dtype": draw(DTYPES),
        "shape": draw(st.lists(DIM, max_size=40)),
        "quantization": draw(st.sampled_from(["NONE", "FP16", "UINT8", "FP8", 2])),
    }
    for key in ("minVal", "maxVal", "scale"):
        if draw(st.booleans()):
            array[key] = draw(st.floats(allow_nan=False, allow_infinity=False, width=32))
    if draw(st.booleans()):
        array["originalDtype"] = draw(DTYPES)
    data = bytes(draw(st.integers(0, 64)))
    if not draw(st.booleans()):
        array["data"] = base64.b64encode(data).decode()
        return json.dumps({"array": array}).encode(), False
    references = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "path": st.sampled_from([["array", "data"], ["name"], [], ["array", 0]]),
                    "offset": st.integers(-1, 80),
                    "length": st.integers(-1, 80),
                }
            ),
            max_size=4,
        )
    )
    array["data"] = None
    header = json.dumps({"message": {"name": None, "array": array}, "attachments": references})
    lead = attachments.MAGIC + len(header).to_bytes(4, "little") + header.encode()
    return lead + bytes(-len(lead) % 16) + data, True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers())
def test_any_array_header_is_ok_or_refused_with_bounded_memory(payload: tuple[bytes, bool]) -> None:
    data, framed = payload
    decode = CODEC.decode_framed if framed else CODEC.decode
    tracemalloc.start()
    try:
        decode(data)
        code = StatusCode.OK
    except DecodeError as exc:
        code = status_of(exc, "/test.hostile.Tensors/Echo")[0]
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert code in (StatusCode.OK, StatusCode.INVALID_ARGUMENT, StatusCode.RESOURCE_EXHAUSTED)
    assert peak <= QUANTIZED_GROWTH * len(data) + 64 * 1024


# -- chunked arrays -------------------------------------------------------------------


def test_an_announced_total_is_not_an_allocation() -> None:
    first = Chunk(data=bytes(16), total=2**40, dtype="uint8", shape=[2**40])
    tracemalloc.start()
    try:
        with pytest.raises(ChunkError, match="stop at byte 16 of 1099511627776") as caught:
            join_array([first])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert status_of(caught.value, "/x")[0] is StatusCode.INVALID_ARGUMENT
    with pytest.raises(ChunkError, match="a total of -1 bytes"):
        join_array([Chunk(data=b"x", total=-1)])
    with pytest.raises(ChunkError, match="do not make an array: dtype 'float128'"):
        join_array([Chunk(data=bytes(16), total=16, dtype="float128", shape=[1])])
