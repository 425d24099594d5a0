"""Seed 001: fn's ``RunnerProtocol`` (``runner.proto``, no package).

``Engage`` is a bidirectional stream of ``oneof`` bodies: the client sends a
``try`` then the request body in ``data`` frames; the runner answers with
``resultStart``, the response body in ``data`` frames, then ``finished``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

import msgspec

from transport import Empty, Int32, Message, Number, Service, one_of, rpc


class TryCall(Message):
    """Request to allocate a slot for a call."""

    models_call_json: Annotated[str, Number(1)] = ""
    slot_hash_id: Annotated[str, Number(2)] = ""
    extensions: Annotated[dict[str, str], Number(3)] = {}


class DataFrame(Message):
    """A piece of a request or response body; the last one has ``eof``."""

    data: Annotated[bytes, Number(1)] = b""
    eof: Annotated[bool, Number(2)] = False


class HttpHeader(Message):
    """One HTTP header of the function's response."""

    key: Annotated[str, Number(1)] = ""
    value: Annotated[str, Number(2)] = ""


class HttpRespMeta(Message):
    """The HTTP status and headers of the function's response."""

    status_code: Annotated[Int32, Number(1)] = 0
    headers: Annotated[list[HttpHeader], Number(2)] = []


class CallResultStart(Message):
    """The call has started to finish: the response metadata, before its body."""

    http: Annotated[HttpRespMeta | None, Number(100, oneof="meta")] = None  # oneof meta


class CallFinished(Message):
    """The call has really finished: it completed or crashed."""

    success: Annotated[bool, Number(1)] = False
    details: Annotated[str, Number(2)] = ""
    # "errorCode" in the seed and on the wire
    error_code: Annotated[Int32, Number(3, name="errorCode")] = 0
    error_str: Annotated[str, Number(4, name="errorStr")] = ""
    created_at: Annotated[str, Number(5, name="createdAt")] = ""
    started_at: Annotated[str, Number(6, name="startedAt")] = ""
    completed_at: Annotated[str, Number(7, name="completedAt")] = ""


class ClientMsg(Message):
    """What the client sends on ``Engage``: exactly one of ``try`` and ``data``."""

    try_: Annotated[TryCall | None, Number(1, oneof="body")] = msgspec.field(
        default=None, name="try"
    )
    data: Annotated[DataFrame | None, Number(2, oneof="body")] = None

    def __post_init__(self) -> None:
        one_of(self, "try_", "data", required=True)


class RunnerMsg(Message):
    """What the runner sends on ``Engage``: exactly one of its three bodies."""

    result_start: Annotated[CallResultStart | None, Number(1, oneof="body")] = None
    data: Annotated[DataFrame | None, Number(2, oneof="body")] = None
    finished: Annotated[CallFinished | None, Number(3, oneof="body")] = None

    def __post_init__(self) -> None:
        one_of(self, "result_start", "data", "finished", required=True)


class RunnerStatus(Message):
    """The runner's lifecycle status."""

    active: Annotated[Int32, Number(2)] = 0  # Number of currently inflight responses
    failed: Annotated[bool, Number(3)] = False  # if status was successful or not
    id: Annotated[str, Number(4)] = ""  # call id if status image was used
    details: Annotated[str, Number(5)] = ""  # details for logging/debug
    error_code: Annotated[Int32, Number(6, name="errorCode")] = 0  # error code if not successful
    # error description if not successful
    error_str: Annotated[str, Number(7, name="errorStr")] = ""
    # call latency details: initialization time
    created_at: Annotated[str, Number(8, name="createdAt")] = ""
    # call latency details: start time in container
    started_at: Annotated[str, Number(9, name="startedAt")] = ""
    # call latency details: end time
    completed_at: Annotated[str, Number(10, name="completedAt")] = ""
    cached: Annotated[bool, Number(11)] = False  # true if status response was provided from cache


class RunnerProtocol(Service, Protocol, name="RunnerProtocol"):
    """A function runner: engage it to run one call, ask its status."""

    @rpc
    def Engage(self, requests: Iterator[ClientMsg]) -> Iterator[RunnerMsg]:
        """Run one call: ``try`` and body frames in, result start, body and finish out."""
        ...

    @rpc
    def Status(self, request: Empty) -> RunnerStatus:
        """The runner's status, including the calls in flight right now."""
        ...
