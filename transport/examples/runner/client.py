"""The client side of ``Engage``: send a call, gather its result."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from transport import Client

from .protocol import CallFinished, CallResultStart, ClientMsg, DataFrame, RunnerProtocol, TryCall

__all__ = ["Outcome", "call_messages", "engage"]


@dataclass(frozen=True)
class Outcome:
    """What a call returned: its result start (none if it failed), body and finish."""

    start: CallResultStart | None
    body: bytes
    finished: CallFinished


def call_messages(
    fn: str, body: bytes = b"", *, frame_size: int = 32 * 1024
) -> Iterator[ClientMsg]:
    """The ``Engage`` requests that call ``fn`` on ``body``: ``try``, then data frames."""
    yield ClientMsg(try_=TryCall(models_call_json=msgspec.json.encode({"fn": fn}).decode()))
    offsets = range(0, len(body), frame_size) if body else [0]
    for offset in offsets:
        chunk = body[offset : offset + frame_size]
        yield ClientMsg(data=DataFrame(data=chunk, eof=offset + frame_size >= len(body)))


def engage(
    client: Client,
    fn: str,
    body: bytes = b"",
    *,
    frame_size: int = 32 * 1024,
    timeout: float | None = None,
) -> Outcome:
    """Run ``fn`` on ``body`` through ``Engage`` and gather the result.

    Raises :class:`~transport.RpcError` if the call ends with an error status,
    ValueError if the runner ends without ``finished``.
    """
    start: CallResultStart | None = None
    chunks: list[bytes] = []
    finished: CallFinished | None = None
    messages = call_messages(fn, body, frame_size=frame_size)
    with client.call(RunnerProtocol.Engage, messages, timeout=timeout) as replies:
        for reply in replies:
            if reply.result_start is not None:
                start = reply.result_start
            elif reply.data is not None:
                chunks.append(reply.data.data)
            elif reply.finished is not None:
                finished = reply.finished
    if finished is None:
        raise ValueError("the runner ended Engage without a finished message")
    return Outcome(start, b"".join(chunks), finished)
