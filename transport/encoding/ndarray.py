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
import math
import typing
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pybase64

__all__ = [
    "MAX_DIMS",
    "QUANTIZED_GROWTH",
    "Quantization",
    "QuantizedArray",
    "array_annotation",
    "check_declared_dtype",
    "check_shape",
    "decode_ndarray",
    "encode_ndarray",
    "is_array_annotation",
    "quantize",
]

Quantization = Literal["NONE", "FP16", "UINT8"]

#: The most dimensions an array may have on the wire (NumPy 1.x's own limit).
MAX_DIMS = 32
#: A dequantized array takes at most this many times its data's bytes
#: (UINT8 codes become 8-byte values at most; FP16 values 4x at most).
QUANTIZED_GROWTH = 8
# NumPy indexes with int64: the product of the non-zero dimensions stays below,
# for an empty array (a 0 among them) too.
_MAX_EXTENT = 2**62
# Dequantize this many elements at a time: no full float64 temporary.
_CHUNK = 1 << 16

# The dtypes that travel, as docs/tutorial.md lists them. Nothing else decodes or
# encodes: an extended-precision float or complex (float128, complex256) has
# padding bytes in each element that no arithmetic initialises.
_TRAVEL = [
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
_TRAVELLING = frozenset(np.dtype(name) for name in _TRAVEL)
_NAMES = ", ".join(_TRAVEL)
# The travelling dtypes in little-endian byte order (or none: one byte), by dtype.
_LITTLE_ENDIAN_NAMES = {dtype.newbyteorder("<"): dtype.name for dtype in _TRAVELLING}


def _spellings() -> dict[str, np.dtype[Any]]:
    """Every accepted spelling of a dtype: its name and typestrings (``<f4``, ``>f4``, ``f4``)."""
    table: dict[str, np.dtype[Any]] = {}
    for name in _TRAVEL:
        dtype = np.dtype(name)
        code = f"{dtype.kind}{dtype.itemsize}"
        little = dtype.newbyteorder("<")
        table.update({name: little, code: little, f"<{code}": little, f"|{code}": little})
        table[f"={code}"] = dtype.newbyteorder("=")
        table[f">{code}"] = dtype.newbyteorder(">")
    return table


_SPELLINGS = _spellings()


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


def _dtype(name: str, field: str = "dtype") -> np.dtype[Any]:
    """The dtype spelled ``name``, one of those that travel; ValueError naming ``field``."""
    dtype = _SPELLINGS.get(name)
    if dtype is None:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise ValueError(f"{field} {shown!r} is not a numeric dtype that travels (use {_NAMES})")
    return dtype


def _little_endian_bytes(array: np.ndarray[Any, Any]) -> memoryview:
    dtype = array.dtype
    if dtype.newbyteorder("=") not in _TRAVELLING:
        raise TypeError(
            f"cannot send an array of dtype {dtype}: only numeric dtypes travel ({_NAMES})"
        )
    contiguous = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    flat: Any = contiguous.reshape(-1).view(np.uint8)
    return memoryview(flat)


def encode_ndarray(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Return the JSON-ready mapping for ``array`` (``data`` left as a buffer for base64)."""
    mode: Quantization = getattr(array, "quantization", "NONE")
    plain = np.asarray(array)
    name = _LITTLE_ENDIAN_NAMES.get(plain.dtype)
    if name is not None and mode == "NONE" and plain.flags.c_contiguous:
        # The common case, without the copies and dtype lookups of the general one.
        flat: Any = plain.reshape(-1).view(np.uint8)
        data = memoryview(flat)
        return {"dtype": name, "shape": list(plain.shape), "data": data}
    wire: dict[str, Any] = {"dtype": plain.dtype.name, "shape": list(plain.shape)}
    if mode != "NONE" and plain.dtype.newbyteorder("=") not in _REAL:
        raise TypeError(f"cannot quantize an array of dtype {plain.dtype}: only real dtypes")
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


# Quantization is of real numbers: complex originals would lose their imaginary part.
_REAL = frozenset(dtype for dtype in _TRAVELLING if dtype.kind != "c")


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


def check_shape(shape: list[int], dtype: np.dtype[Any], nbytes: int) -> int:
    """The element count of ``shape``, checked against ``nbytes`` of data; else ValueError.

    Linear in the number of dimensions, which is bounded first (:data:`MAX_DIMS`):
    no product of a long list of huge integers is ever computed.
    """
    if len(shape) > MAX_DIMS:
        raise ValueError(f"shape has {len(shape)} dimensions, more than {MAX_DIMS}")
    if any(n < 0 for n in shape):
        raise ValueError(f"shape {shape} has a negative dimension")
    extent = 1  # the product of the non-zero dimensions, with an early exit
    for n in shape:
        extent *= n or 1
        if extent > _MAX_EXTENT:
            raise ValueError(f"shape {shape} holds more than {_MAX_EXTENT} elements")
    count = 0 if 0 in shape else extent
    if count * dtype.itemsize != nbytes:
        raise ValueError(
            f"data holds {nbytes} bytes but dtype {dtype.name} x shape {shape} "
            f"needs {count * dtype.itemsize}"
        )
    return count


def decode_ndarray(obj: Any) -> np.ndarray[Any, Any]:
    """Build an array from its decoded JSON mapping; raise ValueError if it is inconsistent.

    The array is a read-only view over the decoded bytes (no copy); quantized
    arrays are dequantized into a new, writable array of the original dtype,
    at most :data:`QUANTIZED_GROWTH` times the size of their data.
    """
    shape = obj.get("shape") if isinstance(obj, dict) else None
    if isinstance(shape, list) and len(shape) > MAX_DIMS:  # before converting a long list
        raise ValueError(f"shape has {len(shape)} dimensions, more than {MAX_DIMS}")
    try:
        wire = msgspec.convert(obj, _Wire)
    except msgspec.ValidationError as exc:
        # msgspec adds the path of the array field; the path inside it becomes words.
        message, _, inner = str(exc).partition(" - at `$.")
        raise ValueError(f"{message} in `{inner}" if inner else message) from None
    dtype = _dtype(wire.dtype)
    original = None
    if wire.quantization != "NONE":
        original = _dtype(wire.original_dtype or "float32", "originalDtype")
        if original.newbyteorder("=") not in _REAL:
            raise ValueError(f"originalDtype {wire.original_dtype!r} is not a real dtype")
        expected = "float16" if wire.quantization == "FP16" else "uint8"
        if dtype.newbyteorder("=") != np.dtype(expected):
            raise ValueError(f"{wire.quantization} quantization needs dtype {expected}")
    data = _data(obj)
    check_shape(wire.shape, dtype, len(data))
    array = np.frombuffer(data, dtype=dtype).reshape(wire.shape)
    if original is None:
        return array
    if wire.quantization == "FP16":
        return array.astype(original.newbyteorder("="))
    if wire.scale is None or wire.min_val is None:
        raise ValueError("UINT8 quantization needs scale and minVal")
    _check_range(wire.scale, wire.min_val, original)
    return _dequantized(array, wire.scale, wire.min_val, original.newbyteorder("="))


def _check_range(scale: float, low: float, original: np.dtype[Any]) -> None:
    """Refuse ``scale`` and ``minVal`` whose codes would not fit ``original`` (no inf, no NaN)."""
    info = (np.finfo if original.kind == "f" else np.iinfo)(original)
    ends = (low, low + 255.0 * scale)
    if not (math.isfinite(scale) and float(info.min) <= min(ends) and max(ends) <= float(info.max)):
        raise ValueError(
            f"scale {scale!r} and minVal {low!r} put values outside the range of {original}"
        )


def _dequantized(
    codes: np.ndarray[Any, Any], scale: float, low: float, original: np.dtype[Any]
) -> np.ndarray[Any, Any]:
    """``codes * scale + low`` in ``original``, computed in float64 a chunk at a time."""
    out = np.empty(codes.shape, dtype=original)
    flat_in, flat_out = codes.reshape(-1), out.reshape(-1)
    for start in range(0, flat_in.size, _CHUNK):
        chunk = flat_in[start : start + _CHUNK].astype(np.float64) * scale + low
        flat_out[start : start + _CHUNK] = chunk.astype(original)
    return out


def array_annotation(hint: Any) -> Any:
    """``NDArray[X]`` spelled out as ``ndarray[shape, dtype[X]]``, whatever numpy's version.

    numpy 2.5 declares ``NDArray`` as a PEP 695 type alias, so ``typing.get_origin``
    of ``NDArray[np.float32]`` is the alias, not ``numpy.ndarray``; older numpy
    gives the ``ndarray`` form directly. Any other hint comes back unchanged.
    """
    alias = typing.get_origin(hint)
    value = getattr(alias, "__value__", None)
    if value is None or not getattr(alias, "__type_params__", None):
        return hint
    return value[typing.get_args(hint)]


def is_array_annotation(hint: Any) -> bool:
    """Whether ``hint`` is ``numpy.ndarray`` or a ``numpy.typing.NDArray[...]`` of any numpy."""
    return hint is np.ndarray or typing.get_origin(array_annotation(hint)) is np.ndarray


@functools.lru_cache(maxsize=256)
def _declared_scalar(annotation: Any) -> type[np.generic] | None:
    """The scalar type of ``NDArray[np.float32]``-style annotations, or None for any dtype."""
    args = typing.get_args(array_annotation(annotation))
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
