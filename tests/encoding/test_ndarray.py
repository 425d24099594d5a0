"""NumPy arrays in messages: every dtype, odd layouts, byte order, bad payloads, quantization."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from transport import (
    Context,
    DecodeError,
    JsonCodec,
    Message,
    QuantizedArray,
    Service,
    bind,
    quantize,
    rpc,
)
from transport.testing import TestServer

Serve = Callable[..., TestServer]

DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


class Tensor(Message):
    name: str = ""
    array: np.ndarray = msgspec.field(default_factory=lambda: np.zeros(0))


class Named(Message):
    arrays: dict[str, np.ndarray] = {}


TENSORS = JsonCodec(Tensor)


def _sample(dtype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray[Any, Any]:
    """Values that use the whole width of ``dtype`` where it has one."""
    count = int(np.prod(shape))
    kind = np.dtype(dtype).kind
    if kind == "b":
        return np.asarray(np.arange(count) % 3 == 0, dtype=bool).reshape(shape)
    if kind in "iu":
        info = np.iinfo(dtype)
        values = [int(info.min), int(info.max), *range(count - 2)]
        return np.array(values, dtype=dtype).reshape(shape)
    if kind == "c":
        return np.asarray(np.arange(count) * (1.5 - 2.25j), dtype=dtype).reshape(shape)
    return np.asarray(np.arange(count) * -0.75 + 0.5, dtype=dtype).reshape(shape)


def _wire(array: Any) -> dict[str, Any]:
    encoded: dict[str, Any] = msgspec.json.decode(TENSORS.encode(Tensor(array=array)))["array"]
    return encoded


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips(dtype: str) -> None:
    array = _sample(dtype)
    wire = _wire(array)
    assert wire["dtype"] == dtype
    assert wire["shape"] == [2, 3]
    expected = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    assert base64.b64decode(wire["data"]) == expected
    back = TENSORS.decode(TENSORS.encode(Tensor(array=array))).array
    assert back.dtype == np.dtype(dtype)
    assert back.shape == (2, 3)
    np.testing.assert_array_equal(back, array)


def test_the_documented_wire_form() -> None:
    wire = TENSORS.encode(Tensor(name="x", array=np.arange(6, dtype=np.int16).reshape(2, 3)))
    assert wire == (
        b'{"name":"x","array":{"dtype":"int16","shape":[2,3],"data":"AAABAAIAAwAEAAUA"}}'
    )


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 2)])
def test_empty_arrays(shape: tuple[int, ...]) -> None:
    array = np.zeros(shape, dtype=np.float32)
    assert _wire(array) == {"dtype": "float32", "shape": list(shape), "data": ""}
    back = TENSORS.decode(TENSORS.encode(Tensor(array=array))).array
    assert back.shape == shape and back.dtype == np.float32


def test_zero_dimensional_arrays() -> None:
    array = np.array(3.5, dtype=np.float64)
    assert _wire(array)["shape"] == []
    back = TENSORS.decode(TENSORS.encode(Tensor(array=array))).array
    assert back.shape == () and back.dtype == np.float64 and float(back) == 3.5


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[::2],
        lambda a: a[:, 1::2],
        lambda a: a.T,
        lambda a: np.asfortranarray(a),
        lambda a: a[::-1, ::-3],
        lambda a: np.broadcast_to(a[:1], a.shape),
    ],
    ids=["sliced", "column-sliced", "transposed", "fortran", "reversed", "broadcast"],
)
def test_non_contiguous_arrays_travel_in_c_order(
    make: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]],
) -> None:
    array = make(np.arange(24, dtype=np.int32).reshape(4, 6))
    wire = _wire(array)
    assert base64.b64decode(wire["data"]) == np.ascontiguousarray(array).tobytes()
    back = TENSORS.decode(TENSORS.encode(Tensor(array=array))).array
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("dtype", [">i4", ">f8", ">c16", ">u2"])
def test_big_endian_arrays_are_sent_little_endian(dtype: str) -> None:
    array = np.arange(5).astype(dtype)
    wire = _wire(array)
    assert wire["dtype"] == np.dtype(dtype).name
    assert (
        base64.b64decode(wire["data"]) == array.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    )
    back = TENSORS.decode(TENSORS.encode(Tensor(array=array))).array
    np.testing.assert_array_equal(back, array)


def test_a_payload_that_says_big_endian_is_read_as_such() -> None:
    data = base64.b64encode(np.arange(3, dtype=">i4").tobytes()).decode()
    wire = msgspec.json.encode({"array": {"dtype": ">i4", "shape": [3], "data": data}})
    np.testing.assert_array_equal(TENSORS.decode(wire).array, [0, 1, 2])


def test_decoded_arrays_are_read_only_views_without_a_copy() -> None:
    back = TENSORS.decode(TENSORS.encode(Tensor(array=np.arange(4.0)))).array
    assert not back.flags.writeable
    assert back.base is not None
    writable = back.copy()
    writable[0] = 9.0
    assert writable[0] == 9.0


def test_named_arrays_in_a_dict() -> None:
    codec = JsonCodec(Named)
    message = Named(arrays={"a": np.ones((2, 2), np.float32), "b": np.arange(3, dtype=np.uint8)})
    back = codec.decode(codec.encode(message))
    assert sorted(back.arrays) == ["a", "b"]
    np.testing.assert_array_equal(back.arrays["a"], message.arrays["a"])
    assert back.arrays["b"].dtype == np.uint8


def _payload(**fields: Any) -> bytes:
    array = {"dtype": "int32", "shape": [2], "data": base64.b64encode(b"\0" * 8).decode()}
    array.update(fields)
    return msgspec.json.encode({"array": {k: v for k, v in array.items() if v is not None}})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"shape": [3]}, "data holds 8 bytes but dtype int32 x shape [3] needs 12"),
        ({"data": base64.b64encode(b"\0" * 7).decode()}, "data holds 7 bytes"),
        ({"shape": [2**40, 2**40]}, "more than"),
        ({"shape": [2**30, 2**30]}, "data holds 8 bytes"),
        ({"shape": [-2, -1]}, "negative dimension"),
        ({"dtype": "object"}, "not a numeric dtype"),
        ({"dtype": "U4"}, "not a numeric dtype"),
        ({"dtype": "datetime64[s]"}, "not a numeric dtype"),
        ({"dtype": "no-such-type"}, "dtype 'no-such-type' is not a numeric dtype"),
        ({"data": "%%% not base64"}, "base64"),
        ({"data": None}, "data"),
        ({"shape": "2"}, "Expected `array`, got `str` in `shape`"),
        ({"dtype": None}, "missing required field `dtype`"),
    ],
)
def test_inconsistent_payloads_do_not_decode(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(DecodeError, match=r"at `\$.array`") as caught:
        TENSORS.decode(_payload(**fields))
    assert message in str(caught.value)


def test_only_numeric_dtypes_are_sent() -> None:
    with pytest.raises(TypeError, match="only numeric dtypes travel"):
        TENSORS.encode(Tensor(array=np.array(["a", "b"])))


def test_fp16_quantization_is_dequantized_on_decode() -> None:
    weights = np.linspace(-2, 2, 101, dtype=np.float32).reshape(1, 101)
    wire = _wire(quantize(weights, "FP16"))
    assert wire["dtype"] == "float16"
    assert (wire["quantization"], wire["originalDtype"]) == ("FP16", "float32")
    assert len(base64.b64decode(wire["data"])) == weights.size * 2
    back = TENSORS.decode(TENSORS.encode(Tensor(array=quantize(weights, "FP16")))).array
    assert back.dtype == np.float32 and back.shape == (1, 101)
    np.testing.assert_allclose(back, weights, rtol=1e-3)
    assert back.flags.writeable


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16"])
def test_uint8_quantization_is_dequantized_on_decode(dtype: str) -> None:
    values = np.linspace(-50, 200, 1000).astype(dtype)
    wire = _wire(quantize(values, "UINT8"))
    assert (wire["dtype"], wire["quantization"], wire["originalDtype"]) == ("uint8", "UINT8", dtype)
    assert (wire["minVal"], wire["maxVal"]) == (float(values.min()), float(values.max()))
    assert wire["scale"] == pytest.approx((wire["maxVal"] - wire["minVal"]) / 255)
    back = TENSORS.decode(TENSORS.encode(Tensor(array=quantize(values, "UINT8")))).array
    assert back.dtype == np.dtype(dtype)
    step = wire["scale"]
    assert np.abs(back.astype(np.float64) - values.astype(np.float64)).max() <= step / 2 + 1


def test_uint8_quantization_of_a_constant_and_an_empty_array() -> None:
    constant = np.full(4, 7.0, dtype=np.float32)
    back = TENSORS.decode(TENSORS.encode(Tensor(array=quantize(constant, "UINT8")))).array
    np.testing.assert_array_equal(back, constant)
    empty = np.zeros(0, dtype=np.float32)
    assert TENSORS.decode(TENSORS.encode(Tensor(array=quantize(empty, "UINT8")))).array.size == 0


def test_quantize_checks_its_mode_and_returns_a_view() -> None:
    with pytest.raises(ValueError, match="unknown quantization mode 'INT4'"):
        quantize(np.zeros(2), "INT4")  # type: ignore[arg-type]
    marked = quantize(np.arange(3.0), "FP16")
    assert isinstance(marked, QuantizedArray) and marked.quantization == "FP16"
    assert _wire(quantize(np.arange(3.0), "NONE"))["dtype"] == "float64"


def test_a_uint8_payload_without_its_scale_does_not_decode() -> None:
    wire = _payload(dtype="uint8", shape=[8], quantization="UINT8")
    with pytest.raises(DecodeError, match="UINT8 quantization needs scale and minVal"):
        TENSORS.decode(wire)


# -- over a real server ------------------------------------------------------------------


class Tensors(Service, Protocol, name="transport.tests.Tensors"):
    @rpc
    def Echo(self, request: Tensor) -> Tensor: ...

    @rpc
    def Split(self, request: Tensor) -> Iterator[Tensor]: ...


class TensorServer:
    def Echo(self, request: Tensor, context: Context) -> Tensor:
        return Tensor(name=str(request.array.dtype), array=request.array * 2)

    def Split(self, request: Tensor, context: Context) -> Iterator[Tensor]:
        for row in request.array:
            yield Tensor(array=row)


@pytest.mark.parametrize("dtype", ["uint8", "int64", "float16", "float64", "complex64"])
def test_arrays_over_a_server(transport_serve: Serve, dtype: str) -> None:
    server = transport_serve(bind(Tensors, TensorServer()))
    array = _sample(dtype, (3, 4))
    reply = server.client.call(Tensors.Echo, Tensor(array=array))
    assert reply.name == dtype
    np.testing.assert_array_equal(reply.array, array * 2)
    rows = [t.array for t in server.client.call(Tensors.Split, Tensor(array=array.T))]
    np.testing.assert_array_equal(np.stack(rows), array.T)


def test_a_bad_array_is_invalid_argument_and_the_server_keeps_serving(
    transport_serve: Serve,
) -> None:
    import grpc

    server = transport_serve(bind(Tensors, TensorServer()))
    raw: Any = server.client.channel.unary_unary(Tensors.Echo.path)
    with pytest.raises(grpc.RpcError) as caught:
        raw(_payload(shape=[5]), timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "needs 20 - at `$.array`" in str(caught.value.details())
    reply = server.client.call(Tensors.Echo, Tensor(array=np.ones(2, np.int8)))
    np.testing.assert_array_equal(reply.array, [2, 2])


class TypedArrays(Message):
    exact: npt.NDArray[np.float32]
    family: npt.NDArray[np.floating[Any]] | None = None


def test_numpy_typing_annotations_decode_and_check_the_dtype() -> None:
    codec = JsonCodec(TypedArrays)
    message = TypedArrays(exact=np.ones(3, np.float32), family=np.zeros(2, np.float16))
    back = codec.decode(codec.encode(message))
    assert back.exact.dtype == np.float32 and back.family is not None
    assert back.family.dtype == np.float16
    wrong = codec.encode(TypedArrays(exact=np.ones(3, np.float64)))
    with pytest.raises(
        DecodeError, match=r"expected an array of float32, got float64 - at `\$.exact`"
    ):
        codec.decode(wrong)
    ints = codec.encode(TypedArrays(exact=np.ones(1, np.float32), family=np.ones(1, np.int8)))
    with pytest.raises(DecodeError, match=r"expected an array of floating, got int8"):
        codec.decode(ints)
