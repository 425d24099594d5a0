"""The model daemon's contract: what a backend implements and what a client sees.

The messages here are both the Python contract and the wire messages of
``transport.v1.Runtime`` (proto3 JSON mapping: ``instanceId``, ``canGenerate``).
A backend implements :class:`Service` and :class:`Session`, with plain methods
or coroutines (async generators for ``generate``); the runtime server adapts
either kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from typing import Annotated, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..encoding.json_codec import Message
from ..encoding.protobuf.schema import Number

__all__ = [
    "Arrays",
    "HealthStatus",
    "Inputs",
    "ModelInfo",
    "OpenSessionRequest",
    "Service",
    "Session",
    "TensorSpec",
]

#: Named tensors, as ``infer`` returns them.
Arrays = Mapping[str, npt.NDArray[Any]]
#: Named tensors, as ``infer`` receives them (decoded from the request).
Inputs = dict[str, npt.NDArray[Any]]


class OpenSessionRequest(Message):
    """The typed model handle (``type`` + ``path``) and a free JSON config."""

    type: Annotated[str, Number(1)]
    path: Annotated[str, Number(2)] = ""
    config: Annotated[dict[str, Any], Number(3)] = {}


class TensorSpec(Message):
    """One named input or output tensor: dtype name and shape (``-1`` for a free axis)."""

    name: Annotated[str, Number(1)]
    dtype: Annotated[str, Number(2)] = ""
    shape: Annotated[list[int], Number(3)] = []


class ModelInfo(Message):
    """A model's capabilities as the backend reads them from the model's metadata."""

    type: Annotated[str, Number(1)]
    path: Annotated[str, Number(2)] = ""
    backend: Annotated[str, Number(3)] = ""
    inputs: Annotated[list[TensorSpec], Number(4)] = []
    outputs: Annotated[list[TensorSpec], Number(5)] = []
    can_generate: Annotated[bool, Number(6)] = False
    metadata: Annotated[dict[str, Any], Number(7)] = {}


class HealthStatus(Message, omit_defaults=False):
    """The unfenced liveness probe: who serves this endpoint, and whether it serves now.

    Every field is always on the wire (``ready: false`` included), since JSON
    peers read them.
    """

    instance_id: Annotated[str, Number(1)]
    ready: Annotated[bool, Number(2)]
    backend: Annotated[str, Number(3)]


@runtime_checkable
class Session(Protocol):
    """An open model session; every method may also be a coroutine (``async def``).

    ``generate`` is a generator of text pieces, or an async generator. ``close``
    is called exactly once, by the runtime, when the session is closed, expires
    or the server shuts down.
    """

    @property
    def info(self) -> ModelInfo:
        """The model's capabilities, as answered to OpenSession."""
        ...

    def infer(self, inputs: Inputs) -> Arrays | Awaitable[Arrays]:
        """Run the model on named arrays and return named arrays."""
        ...

    def generate(self, prompt: str, max_tokens: int) -> Iterator[str] | AsyncIterator[str]:
        """Stream at most ``max_tokens`` text pieces (``0``: the backend's own limit)."""
        ...

    def close(self) -> Awaitable[None] | None:
        """Release the session's resources."""
        ...


@runtime_checkable
class Service(Protocol):
    """What a model daemon serves: a backend that describes models and opens sessions.

    Raise :class:`transport.RpcError` to answer with a status, for example
    ``NOT_FOUND`` for a model type the backend does not serve.
    """

    def describe(self, request: OpenSessionRequest) -> ModelInfo | Awaitable[ModelInfo]:
        """Report the capabilities of the model named by ``request`` (config ignored)."""
        ...

    def open_session(self, request: OpenSessionRequest) -> Session | Awaitable[Session]:
        """Open a session on the model named by ``request``."""
        ...


def as_arrays(values: Mapping[str, Any]) -> dict[str, npt.NDArray[Any]]:
    """Check that a backend returned named numpy arrays; a dict ready for the wire."""
    result: dict[str, npt.NDArray[Any]] = {}
    for name, value in values.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise TypeError(
                f"infer must return {{str: numpy.ndarray}}, got {type(name).__name__}: "
                f"{type(value).__name__}"
            )
        result[name] = value
    return result
