"""The reference backend ``none``: serves the model type ``echo`` and nothing else.

``infer`` returns its inputs unchanged; ``generate`` streams the prompt's
whitespace-separated words, one piece each, at most ``max_tokens`` (``0``: all).
It is asynchronous (nothing here blocks), and counts what it does so tests can
check that every session is closed exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..errors import RpcError
from ..status import StatusCode
from .contract import Arrays, Inputs, ModelInfo, OpenSessionRequest, TensorSpec

__all__ = ["EchoSession", "NoneBackend"]

#: The one model type this backend serves.
ECHO = "echo"


class EchoSession:
    """A session on the ``echo`` model."""

    def __init__(self, backend: NoneBackend, info: ModelInfo) -> None:
        self._backend = backend
        self.info = info
        self.closed = False

    async def infer(self, inputs: Inputs) -> Arrays:
        """Return ``inputs`` unchanged."""
        return inputs

    async def generate(self, prompt: str, max_tokens: int) -> AsyncIterator[str]:
        """Stream the words of ``prompt``, at most ``max_tokens`` of them (0: all)."""
        words = prompt.split()
        for word in words[:max_tokens] if max_tokens else words:
            yield word

    async def close(self) -> None:
        """Count the close (the runtime calls it exactly once)."""
        self.closed = True
        self._backend.closed += 1


class NoneBackend:
    """The ``none`` backend: no inference engine, just the ``echo`` model."""

    name = "none"

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    async def describe(self, request: OpenSessionRequest) -> ModelInfo:
        """The ``echo`` model's capabilities; NOT_FOUND for any other model type."""
        if request.type != ECHO:
            raise RpcError(
                StatusCode.NOT_FOUND,
                f"backend {self.name!r} serves model type {ECHO!r}, not {request.type!r}",
                {"type": request.type},
            )
        return ModelInfo(
            type=ECHO,
            path=request.path,
            backend=self.name,
            inputs=[TensorSpec(name="*", dtype="*", shape=[-1])],
            outputs=[TensorSpec(name="*", dtype="*", shape=[-1])],
            can_generate=True,
            metadata={"description": "returns its inputs; generates the prompt's words"},
        )

    async def open_session(self, request: OpenSessionRequest) -> EchoSession:
        """Open an ``echo`` session (NOT_FOUND for any other model type)."""
        session = EchoSession(self, await self.describe(request))
        self.opened += 1
        return session
