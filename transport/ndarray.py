"""NumPy arrays inside messages.

A field typed ``numpy.ndarray`` travels as
``{"dtype": "float32", "shape": [2, 3], "data": "<base64>"}``: the C-order,
little-endian bytes of the array in standard base64. Quantized arrays (see
:func:`quantize`) also carry ``quantization``, ``minVal``, ``maxVal``, ``scale``
and ``originalDtype`` as in Jina's ``DenseNdArrayProto``, and are dequantized on
decode.
"""

from __future__ import annotations

import functools
import typing
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pybase64

__all__ = [
    "Quantization",
    "QuantizedArray",
    "check_declared_dtype",
    "decode_ndarray",
    "encode_ndarray",
    "quantize",
]

Quantization = Literal["NONE", "FP16", "UINT8"]

# Numeric kinds only: bool, signed, unsigned, float, complex. Object, string,
# void and datetime dtypes would let a peer make us build arbitrary objects.
_KINDS = frozenset("biufc")


class _Wire(msgspec.Struct, rename="camel", omit_defaults=True):
    dtype: str
    shape: list[int]
    # ``data`` is read apart: a base64 string decoded with a SIMD decoder (about
    # 20x msgspec's), or a raw buffer when it arrived as an attachment.
    quantization: Quantization = "NONE"
    min_val: float | None = None
    max_val: float | None = None
    scale: float | None = None
    original_dtype: str | None = None


class QuantizedArray(np.ndarray):
    """An array view that is sent quantized; build one with :func:`quantize`."""

    quantization: Quantization = "NONE"


def quantize(array: npt.ArrayLike, mode: Quantization) -> QuantizedArray:
    """Mark ``array`` to travel quantized as FP16 (2x smaller) or UINT8 (lossy, 4x smaller)."""
    if mode not in ("NONE", "FP16", "UINT8"):
        raise ValueError(f"unknown quantization mode {mode!r}; expected NONE, FP16 or UINT8")
    view = np.asarray(array).view(QuantizedArray)
    view.quantization = mode
    return view


def _dtype(name: str) -> np.dtype[Any]:
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise ValueError(f"unknown dtype {name!r}") from None
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"dtype {name!r} is not a numeric dtype")
    # The wire is little-endian unless the dtype string says otherwise.
    return dtype if dtype.byteorder == ">" else dtype.newbyteorder("<")


def _little_endian_bytes(array: np.ndarray[Any, Any]) -> memoryview:
    dtype = array.dtype
    if dtype.kind not in _KINDS or dtype.fields is not None:
        raise TypeError(f"cannot send an array of dtype {dtype}: only numeric dtypes travel")
    contiguous = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    flat: Any = contiguous.reshape(-1).view(np.uint8)
    return memoryview(flat)


def encode_ndarray(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Return the JSON-ready mapping for ``array`` (``data`` left as a buffer for base64)."""
    mode: Quantization = getattr(array, "quantization", "NONE")
    plain = np.asarray(array)
    wire: dict[str, Any] = {"dtype": plain.dtype.name, "shape": list(plain.shape)}
    if mode == "FP16":
        wire["dtype"] = "float16"
        wire["data"] = _little_endian_bytes(plain.astype(np.float16))
        wire["quantization"] = "FP16"
        wire["originalDtype"] = plain.dtype.name
    elif mode == "UINT8":
        low = float(plain.min()) if plain.size else 0.0
        high = float(plain.max()) if plain.size else 0.0
        scale = (high - low) / 255.0 or 1.0
        codes = np.rint((plain.astype(np.float64) - low) / scale).astype(np.uint8)
        wire.update(
            dtype="uint8",
            data=_little_endian_bytes(codes),
            quantization="UINT8",
            minVal=low,
            maxVal=high,
            scale=scale,
            originalDtype=plain.dtype.name,
        )
    else:
        wire["data"] = _little_endian_bytes(plain)
    return wire


def _data(obj: dict[str, Any]) -> bytes | memoryview:
    data = obj.get("data")
    if isinstance(data, str):
        try:
            return pybase64.b64decode(data, validate=True)
        except ValueError:
            raise ValueError("data is not valid base64") from None
    if isinstance(data, (bytes, memoryview)):
        return data
    raise ValueError("data must be a base64 string")


def decode_ndarray(obj: Any) -> np.ndarray[Any, Any]:
    """Build an array from its decoded JSON mapping; raise ValueError if it is inconsistent.

    The array is a read-only view over the decoded bytes (no copy); quantized
    arrays are dequantized into a new, writable array of the original dtype.
    """
    try:
        wire = msgspec.convert(obj, _Wire)
    except msgspec.ValidationError as exc:
        # msgspec adds the path of the array field; the path inside it becomes words.
        message, _, inner = str(exc).partition(" - at `$.")
        raise ValueError(f"{message} in `{inner}" if inner else message) from None
    data = _data(obj)
    dtype = _dtype(wire.dtype)
    if any(n < 0 for n in wire.shape):
        raise ValueError(f"shape {wire.shape} has a negative dimension")
    count = 1
    for n in wire.shape:
        count *= n
    if count * dtype.itemsize != len(data):
        raise ValueError(
            f"data holds {len(data)} bytes but dtype {wire.dtype} x shape "
            f"{wire.shape} needs {count * dtype.itemsize}"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(wire.shape)
    if wire.quantization == "NONE":
        return array
    original = _dtype(wire.original_dtype or "float32")
    if wire.quantization == "FP16":
        return array.astype(original.newbyteorder("="))
    if wire.scale is None or wire.min_val is None:
        raise ValueError("UINT8 quantization needs scale and minVal")
    restored = array.astype(np.float64) * wire.scale + wire.min_val
    return restored.astype(original.newbyteorder("="))


@functools.lru_cache(maxsize=256)
def _declared_scalar(annotation: Any) -> type[np.generic] | None:
    """The scalar type of ``NDArray[np.float32]``-style annotations, or None for any dtype."""
    args = typing.get_args(annotation)
    if len(args) < 2:
        return None
    scalars = typing.get_args(args[1])
    scalar = scalars[0] if scalars else None
    scalar = typing.get_origin(scalar) or scalar  # np.floating[Any] -> np.floating
    if isinstance(scalar, type) and issubclass(scalar, np.generic):
        return scalar
    return None


def check_declared_dtype(array: np.ndarray[Any, Any], annotation: Any) -> np.ndarray[Any, Any]:
    """Refuse an array whose dtype does not fit a field typed ``NDArray[np.float32]`` and alike.

    An abstract scalar type (``NDArray[np.floating]``) admits every dtype under it.
    """
    scalar = _declared_scalar(annotation)
    if scalar is not None and not issubclass(array.dtype.type, scalar):
        raise ValueError(f"expected an array of {scalar.__name__}, got {array.dtype.name}")
    return array
