"""The messages of gRPC's interop suite, from ``src/proto/grpc/testing/messages.proto``.

Only the messages that ``grpc.testing.TestService`` uses, with every field they
have, declared as :class:`~transport.Message` so that the wire is the proto3
JSON mapping: ``responseSize``, ``responseParameters``, ``intervalUs``,
``payload.body`` as base64, enums by name, absent sub-messages left out.
"""

from __future__ import annotations

import enum

from ..encoding.json_codec import Message
from ..encoding.scalars import Int32

__all__ = [
    "BoolValue",
    "EchoStatus",
    "Empty",
    "GrpclbRouteType",
    "Payload",
    "PayloadType",
    "ResponseParameters",
    "SimpleRequest",
    "SimpleResponse",
    "StreamingInputCallRequest",
    "StreamingInputCallResponse",
    "StreamingOutputCallRequest",
    "StreamingOutputCallResponse",
    "TestOrcaReport",
]


class PayloadType(enum.Enum):
    """The kind of payload a response carries (the proto has only one)."""

    COMPRESSABLE = "COMPRESSABLE"


class GrpclbRouteType(enum.Enum):
    """How a call reached the server with respect to gRPCLB."""

    GRPCLB_ROUTE_TYPE_UNKNOWN = "GRPCLB_ROUTE_TYPE_UNKNOWN"
    GRPCLB_ROUTE_TYPE_FALLBACK = "GRPCLB_ROUTE_TYPE_FALLBACK"
    GRPCLB_ROUTE_TYPE_BACKEND = "GRPCLB_ROUTE_TYPE_BACKEND"


class Empty(Message):
    """``grpc.testing.Empty``: ``{}`` on the wire."""


class BoolValue(Message):
    """A nullable bool (the suite's stand-in for ``google.protobuf.BoolValue``)."""

    value: bool = False


class Payload(Message):
    """A block of bytes that only makes a message bigger."""

    type: PayloadType = PayloadType.COMPRESSABLE
    body: bytes = b""


class EchoStatus(Message):
    """A status the client asks the server to end the call with."""

    code: Int32 = 0
    message: str = ""


class TestOrcaReport(Message):
    """Load report data a server would record for ORCA (accepted, not acted on)."""

    __test__ = False  # not a pytest test class

    cpu_utilization: float = 0.0
    memory_utilization: float = 0.0
    request_cost: dict[str, float] = {}
    utilization: dict[str, float] = {}


class SimpleRequest(Message):
    """The request of ``UnaryCall``."""

    response_type: PayloadType = PayloadType.COMPRESSABLE
    response_size: Int32 = 0
    payload: Payload | None = None
    fill_username: bool = False
    fill_oauth_scope: bool = False
    response_compressed: BoolValue | None = None
    response_status: EchoStatus | None = None
    expect_compressed: BoolValue | None = None
    fill_server_id: bool = False
    fill_grpclb_route_type: bool = False
    orca_per_query_report: TestOrcaReport | None = None


class SimpleResponse(Message):
    """The response of ``UnaryCall``."""

    payload: Payload | None = None
    username: str = ""
    oauth_scope: str = ""
    server_id: str = ""
    grpclb_route_type: GrpclbRouteType = GrpclbRouteType.GRPCLB_ROUTE_TYPE_UNKNOWN
    hostname: str = ""


class StreamingInputCallRequest(Message):
    """One request of the client stream of ``StreamingInputCall``."""

    payload: Payload | None = None
    expect_compressed: BoolValue | None = None


class StreamingInputCallResponse(Message):
    """The response of ``StreamingInputCall``: the size of every payload received."""

    aggregated_payload_size: Int32 = 0


class ResponseParameters(Message):
    """How one response of a stream should look and when it should leave."""

    size: Int32 = 0
    interval_us: Int32 = 0
    compressed: BoolValue | None = None


class StreamingOutputCallRequest(Message):
    """The request of the streaming-response methods: one response per parameter entry."""

    response_type: PayloadType = PayloadType.COMPRESSABLE
    response_parameters: list[ResponseParameters] = []
    payload: Payload | None = None
    response_status: EchoStatus | None = None
    orca_oob_report: TestOrcaReport | None = None


class StreamingOutputCallResponse(Message):
    """One response of a streaming-response method."""

    payload: Payload | None = None
