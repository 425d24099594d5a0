"""NumPy arrays to and from Jina's ``NdArrayProto``, with transport's ndarray rules.

The bytes, dtype and quantization rules are those of :mod:`transport.encoding.ndarray`
(the same fields as Jina's ``DenseNdArrayProto``, named ``data`` there instead
of ``buffer``): FP16 arrays are cast back to ``originalDtype``, UINT8 arrays
become ``code * scale + minVal`` in ``originalDtype``.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from transport.encoding.ndarray import (
    MAX_DIMS,
    Quantization,
    decode_ndarray,
    encode_ndarray,
    quantize,
)

from .protocol import DenseNdArrayProto, NdArrayProto, SparseNdArrayProto

__all__ = ["MAX_SPARSE_ELEMENTS", "element_count", "from_numpy", "to_numpy"]

#: The most elements a sparse array may expand to (a peer must not make us allocate at will).
MAX_SPARSE_ELEMENTS = 1 << 20

Array = np.ndarray[Any, Any]


def _dense(array: npt.ArrayLike, quantization: Quantization) -> DenseNdArrayProto:
    wire = encode_ndarray(quantize(array, quantization))
    dense = DenseNdArrayProto(buffer=bytes(wire["data"]), shape=wire["shape"], dtype=wire["dtype"])
    if quantization == "NONE":
        return dense
    # Only the fields the quantization sets: msgspec leaves a field out when it
    # *is* its default, and a computed 0.0 is not the default object.
    return msgspec.structs.replace(
        dense,
        quantization=DenseNdArrayProto.QuantizationMode[quantization],
        original_dtype=wire["originalDtype"],
        **{name: wire[key] for key, name in _UINT8_FIELDS if key in wire},
    )


_UINT8_FIELDS = (("maxVal", "max_val"), ("minVal", "min_val"), ("scale", "scale"))


def from_numpy(
    array: npt.ArrayLike, quantization: Quantization = "NONE", *, sparse: bool = False
) -> NdArrayProto:
    """Wrap ``array`` as an ``NdArrayProto``, dense (quantized if asked) or sparse."""
    if not sparse:
        return NdArrayProto(dense=_dense(array, quantization))
    values = np.asarray(array)
    indices = np.argwhere(values).astype(np.int64)
    return NdArrayProto(
        sparse=SparseNdArrayProto(
            indices=_dense(indices, "NONE"),
            values=_dense(values[tuple(indices.T)], quantization),
            dense_shape=list(values.shape),
        )
    )


def _from_dense(dense: DenseNdArrayProto) -> Array:
    return decode_ndarray(
        {
            "dtype": dense.dtype,
            "shape": dense.shape,
            "data": dense.buffer,
            "quantization": dense.quantization.name,
            "minVal": dense.min_val,
            "maxVal": dense.max_val,
            "scale": dense.scale,
            "originalDtype": dense.original_dtype or None,
        }
    )


def _sparse_count(dense_shape: list[int]) -> int:
    """The elements of ``denseShape``, checked in bounded time (no product of a huge list)."""
    if len(dense_shape) > MAX_DIMS or any(n < 0 for n in dense_shape):
        raise ValueError(f"denseShape has over {MAX_DIMS} dimensions or a negative one")
    count = 1
    for n in dense_shape:
        count *= n
        if count > MAX_SPARSE_ELEMENTS:
            raise ValueError(
                f"denseShape {dense_shape} is larger than allowed ({MAX_SPARSE_ELEMENTS} elements)"
            )
    return count


def element_count(array: NdArrayProto | DenseNdArrayProto) -> int:
    """How many elements :func:`to_numpy` would build, found without building them.

    Raises ValueError if a sparse ``denseShape`` is invalid or over :data:`MAX_SPARSE_ELEMENTS`.
    """
    if isinstance(array, NdArrayProto):
        if array.sparse is not None:
            return _sparse_count(array.sparse.dense_shape)
        if array.dense is None:
            return 0
        array = array.dense
    # A dense array's shape was checked against its buffer when it was decoded.
    return math.prod(array.shape)


def _from_sparse(sparse: SparseNdArrayProto) -> Array:
    if sparse.indices is None or sparse.values is None:
        raise ValueError("a sparse array needs indices and values")
    _sparse_count(sparse.dense_shape)
    indices = _from_dense(sparse.indices)
    values = _from_dense(sparse.values)
    shape = tuple(sparse.dense_shape)
    if indices.shape != (len(values), len(shape)) or values.ndim != 1:
        raise ValueError(
            f"indices of shape {list(indices.shape)} and values of shape {list(values.shape)} "
            f"do not fit denseShape {list(shape)}"
        )
    if indices.dtype.kind not in "iu" or ((indices < 0) | (indices >= shape)).any():
        raise ValueError(f"indices are not integers within denseShape {list(shape)}")
    out = np.zeros(shape, dtype=values.dtype)
    out[tuple(indices.T)] = values
    return out


def to_numpy(array: NdArrayProto | DenseNdArrayProto) -> Array:
    """The numpy array of ``array`` in its dtype and shape, dequantized, sparse made dense.

    Raises ValueError if the array is empty or inconsistent.
    """
    if isinstance(array, DenseNdArrayProto):
        return _from_dense(array)
    if array.dense is not None:
        return _from_dense(array.dense)
    if array.sparse is not None:
        return _from_sparse(array.sparse)
    raise ValueError("the NdArrayProto holds neither dense nor sparse")
