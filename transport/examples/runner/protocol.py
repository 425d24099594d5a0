"""Seed 001: fn's ``RunnerProtocol`` (``runner.proto``, no package).

``Engage`` is a bidirectional stream of ``oneof`` bodies: the client sends a
``try`` then the request body in ``data`` frames; the runner answers with
``resultStart``, the response body in ``data`` frames, then ``finished``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgspec

from ...codec import Message
from ...service import Service, rpc
from ...types import Int32
from ...wellknown import Empty, one_of


class TryCall(Message):
    """Request to allocate a slot for a call."""

    models_call_json: str = ""
    slot_hash_id: str = ""
    extensions: dict[str, str] = {}


class DataFrame(Message):
    """A piece of a request or response body; the last one has ``eof``."""

    data: bytes = b""
    eof: bool = False


class HttpHeader(Message):
    """One HTTP header of the function's response."""

    key: str = ""
    value: str = ""


class HttpRespMeta(Message):
    """The HTTP status and headers of the function's response."""

    status_code: Int32 = 0
    headers: list[HttpHeader] = []


class CallResultStart(Message):
    """The call has started to finish: the response metadata, before its body."""

    http: HttpRespMeta | None = None  # oneof meta


class CallFinished(Message):
    """The call has really finished: it completed or crashed."""

    success: bool = False
    details: str = ""
    error_code: Int32 = 0  # "errorCode" in the seed and on the wire
    error_str: str = ""
    created_at: str = ""
    started_at: str = ""
    completed_at: str = ""


class ClientMsg(Message):
    """What the client sends on ``Engage``: exactly one of ``try`` and ``data``."""

    try_: TryCall | None = msgspec.field(default=None, name="try")
    data: DataFrame | None = None

    def __post_init__(self) -> None:
        one_of(self, "try_", "data", required=True)


class RunnerMsg(Message):
    """What the runner sends on ``Engage``: exactly one of its three bodies."""

    result_start: CallResultStart | None = None
    data: DataFrame | None = None
    finished: CallFinished | None = None

    def __post_init__(self) -> None:
        one_of(self, "result_start", "data", "finished", required=True)


class RunnerStatus(Message):
    """The runner's lifecycle status."""

    active: Int32 = 0  # Number of currently inflight responses
    failed: bool = False  # if status was successful or not
    id: str = ""  # call id if status image was used
    details: str = ""  # details for logging/debug
    error_code: Int32 = 0  # error code if not successful
    error_str: str = ""  # error description if not successful
    created_at: str = ""  # call latency details: initialization time
    started_at: str = ""  # call latency details: start time in container
    completed_at: str = ""  # call latency details: end time
    cached: bool = False  # true if status response was provided from cache


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
