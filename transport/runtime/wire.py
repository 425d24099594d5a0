"""The wire declaration ``transport.v1.Runtime`` and its messages (proto3 JSON mapping).

``Health`` is unfenced; every other call carries request metadata
``x-owner-instance`` naming the owner it expects (see :mod:`.fence`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

import msgspec
import numpy as np

from ..encoding.json_codec import Message
from ..encoding.protobuf import Number
from ..encoding.scalars import Kind
from ..service import Service as Declaration
from ..service import rpc
from .contract import HealthStatus, ModelInfo, OpenSessionRequest

__all__ = [
    "CloseSessionReply",
    "CloseSessionRequest",
    "GenerateRequest",
    "HealthRequest",
    "InferReply",
    "InferRequest",
    "OpenSessionReply",
    "Runtime",
    "Token",
]

#: A non-negative proto3 int32.
Count = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1), Kind("int32")]


class HealthRequest(Message):
    """``{}``."""


class OpenSessionReply(Message):
    """``{handle, info}``: the new session's opaque handle and its model's capabilities."""

    handle: Annotated[str, Number(1)]
    info: Annotated[ModelInfo, Number(2)]


class InferRequest(Message):
    """``{handle, inputs: {name: NdArray}}``."""

    handle: Annotated[str, Number(1)]
    inputs: Annotated[dict[str, np.ndarray], Number(2)] = {}


class InferReply(Message):
    """``{outputs: {name: NdArray}}``."""

    outputs: Annotated[dict[str, np.ndarray], Number(1)] = {}


class GenerateRequest(Message):
    """``{handle, prompt, maxTokens}``; ``maxTokens`` 0 or absent: the backend's own limit."""

    handle: Annotated[str, Number(1)]
    prompt: Annotated[str, Number(2)] = ""
    max_tokens: Annotated[Count, Number(3)] = 0


class Token(Message):
    """``{index, text}``: one streamed piece of generated text, numbered from 0."""

    index: Annotated[int, Number(1)] = 0
    text: Annotated[str, Number(2)] = ""


class CloseSessionRequest(Message):
    """``{handle}``."""

    handle: Annotated[str, Number(1)]


class CloseSessionReply(Message):
    """``{}``."""


class Runtime(Declaration, Protocol, name="transport.v1.Runtime"):
    """The model daemon's service: an unfenced probe and fenced model sessions."""

    @rpc
    def Health(self, request: HealthRequest) -> HealthStatus:
        """The unfenced liveness probe; answers even while not ready."""

    @rpc
    def Describe(self, request: OpenSessionRequest) -> ModelInfo:
        """A model's capabilities (the request's config is ignored)."""

    @rpc
    def OpenSession(self, request: OpenSessionRequest) -> OpenSessionReply:
        """Open a session; answers its handle and the model's capabilities."""

    @rpc
    def Infer(self, request: InferRequest) -> InferReply:
        """Run the session's model on named arrays."""

    @rpc
    def Generate(self, request: GenerateRequest) -> Iterator[Token]:
        """Stream generated text, one piece per message."""

    @rpc
    def CloseSession(self, request: CloseSessionRequest) -> CloseSessionReply:
        """Close a session; its handle is NOT_FOUND from then on."""
