"""Seed 004: Jina's ``JinaRPC`` (``jina.proto``, no package).

``Call`` is a bidirectional stream of ``RequestProto``: each request carries
one body (index, search, delete, update, train or control) of recursive
``DocumentProto`` documents whose embeddings are n-dimensional arrays
(``NdArrayProto``, optionally FP16- or UINT8-quantized). Nested messages and
enums keep their place in the seed: ``DenseNdArrayProto.QuantizationMode``,
``RequestProto.IndexRequestProto``, ``StatusProto.StatusCode``...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

from transport import (
    EnumField,
    Float32,
    Int32,
    Int64,
    Message,
    Number,
    ProtoEnum,
    Service,
    Struct,
    Timestamp,
    UInt32,
    UInt64,
    one_of,
    rpc,
)
from transport.encoding.ndarray import decode_ndarray


class DenseNdArrayProto(Message):
    """A (quantized) dense n-dim array: C-order bytes, shape and dtype."""

    class QuantizationMode(ProtoEnum):
        """How ``buffer`` is quantized."""

        NONE = 0  # stored in the original dtype
        FP16 = 1  # 2x smaller if dtype is set to FP32
        UINT8 = 2  # 4x smaller but lossy when dtype is FP32

    buffer: Annotated[bytes, Number(1)] = b""
    shape: Annotated[list[UInt32], Number(2)] = []
    dtype: Annotated[str, Number(3)] = ""
    quantization: Annotated[EnumField[QuantizationMode], Number(4)] = QuantizationMode.NONE
    max_val: Annotated[Float32, Number(5)] = 0.0
    min_val: Annotated[Float32, Number(6)] = 0.0
    scale: Annotated[Float32, Number(7)] = 0.0
    original_dtype: Annotated[str, Number(8)] = ""

    def __post_init__(self) -> None:
        # A buffer that does not hold dtype x shape is refused when decoded,
        # with the path of the array (the quantization is checked on use).
        if self.buffer or self.shape or self.dtype:
            decode_ndarray({"dtype": self.dtype, "shape": self.shape, "data": self.buffer})


class SparseNdArrayProto(Message):
    """A sparse array: the indices and values of its non-zero elements."""

    indices: Annotated[DenseNdArrayProto | None, Number(1)] = None  # int64 [N, ndims]
    values: Annotated[DenseNdArrayProto | None, Number(2)] = None  # [N]
    dense_shape: Annotated[list[Int64], Number(3)] = []


class NdArrayProto(Message):
    """An n-dim array, dense or sparse (a oneof)."""

    dense: Annotated[DenseNdArrayProto | None, Number(1, oneof="content")] = None
    sparse: Annotated[SparseNdArrayProto | None, Number(2, oneof="content")] = None

    def __post_init__(self) -> None:
        one_of(self, "dense", "sparse")


class NamedScoreProto(Message):
    """A score of a document relative to ``refId``; scores can nest."""

    value: Annotated[Float32, Number(1)] = 0.0
    op_name: Annotated[str, Number(2)] = ""
    description: Annotated[str, Number(3)] = ""
    operands: Annotated[list[NamedScoreProto], Number(4)] = []
    ref_id: Annotated[str, Number(5)] = ""


class DocumentProto(Message):
    """A document: content, embedding, and recursive chunks and matches."""

    id: Annotated[str, Number(1)] = ""
    content_hash: Annotated[str, Number(24)] = ""
    granularity: Annotated[UInt32, Number(14)] = 0
    adjacency: Annotated[UInt32, Number(22)] = 0
    level_name: Annotated[str, Number(15)] = ""
    parent_id: Annotated[str, Number(16)] = ""
    buffer: Annotated[bytes, Number(3, oneof="content")] = b""
    blob: Annotated[NdArrayProto | None, Number(12, oneof="content")] = None
    text: Annotated[str, Number(13, oneof="content")] = ""
    chunks: Annotated[list[DocumentProto], Number(4)] = []
    weight: Annotated[Float32, Number(5)] = 0.0
    length: Annotated[UInt32, Number(6)] = 0
    matches: Annotated[list[DocumentProto], Number(8)] = []
    mime_type: Annotated[str, Number(10)] = ""
    uri: Annotated[str, Number(9)] = ""
    tags: Annotated[Struct, Number(11)] = {}
    location: Annotated[list[UInt32], Number(17)] = []
    offset: Annotated[UInt32, Number(18)] = 0
    embedding: Annotated[NdArrayProto | None, Number(19)] = None
    score: Annotated[NamedScoreProto | None, Number(20)] = None
    modality: Annotated[str, Number(21)] = ""
    evaluations: Annotated[list[NamedScoreProto], Number(23)] = []


class StatusProto(Message):
    """The status of a request: a code, and the first exception if any."""

    class StatusCode(ProtoEnum):
        """What happened."""

        SUCCESS = 0  # success
        PENDING = 1  # there are pending messages, more messages are followed
        READY = 2  # ready to use
        ERROR = 3  # error
        ERROR_DUPLICATE = 4  # already a existing pod running
        ERROR_NOTALLOWED = 5  # not allowed to open pod remotely
        ERROR_CHAINED = 6  # chained from the previous error

    class ExceptionProto(Message):
        """An exception raised while handling the request."""

        name: Annotated[str, Number(1)] = ""
        args: Annotated[list[str], Number(2)] = []
        stacks: Annotated[list[str], Number(3)] = []
        executor: Annotated[str, Number(4)] = ""
        driver: Annotated[str, Number(5)] = ""

    code: Annotated[EnumField[StatusCode], Number(1)] = StatusCode.SUCCESS
    description: Annotated[str, Number(2)] = ""
    exception: Annotated[ExceptionProto | None, Number(3)] = None


class RouteProto(Message):
    """One pod a message went through."""

    pod: Annotated[str, Number(1)] = ""
    pod_id: Annotated[str, Number(2)] = ""
    start_time: Annotated[Timestamp | None, Number(3)] = None
    end_time: Annotated[Timestamp | None, Number(4)] = None
    status: Annotated[StatusProto | None, Number(5)] = None


class QueryLangProto(Message):
    """A query language setting, mapped to a driver."""

    name: Annotated[str, Number(1)] = ""
    parameters: Annotated[Struct, Number(2)] = {}
    disabled: Annotated[bool, Number(3)] = False
    priority: Annotated[Int32, Number(4)] = 0


#: The members of ``RequestProto``'s ``body`` oneof.
BODIES = ("train", "index", "search", "control", "delete", "update")


class RequestProto(Message):
    """A request: its id and exactly one body (a oneof)."""

    class TrainRequestProto(Message):
        """Documents to train on."""

        docs: Annotated[list[DocumentProto], Number(1)] = []
        groundtruths: Annotated[list[DocumentProto], Number(2)] = []
        flush: Annotated[bool, Number(3)] = False

    class IndexRequestProto(Message):
        """Documents to index."""

        docs: Annotated[list[DocumentProto], Number(1)] = []
        groundtruths: Annotated[list[DocumentProto], Number(2)] = []

    class SearchRequestProto(Message):
        """Documents to query."""

        docs: Annotated[list[DocumentProto], Number(1)] = []
        groundtruths: Annotated[list[DocumentProto], Number(2)] = []

    class ControlRequestProto(Message):
        """A command to the pod."""

        class Command(ProtoEnum):
            """The control commands."""

            TERMINATE = 0  # shutdown the BasePod
            STATUS = 1  # check the status of the BasePod
            IDLE = 3  # tells the router that the dealer is idle

        command: Annotated[EnumField[Command], Number(1)] = Command.TERMINATE
        args: Annotated[Struct, Number(2)] = {}

    class DeleteRequestProto(Message):
        """Documents to delete."""

        docs: Annotated[list[DocumentProto], Number(1)] = []
        groundtruths: Annotated[list[DocumentProto], Number(2)] = []

    class UpdateRequestProto(Message):
        """Documents to update."""

        docs: Annotated[list[DocumentProto], Number(1)] = []
        groundtruths: Annotated[list[DocumentProto], Number(2)] = []

    request_id: Annotated[str, Number(1)] = ""
    train: Annotated[TrainRequestProto | None, Number(2, oneof="body")] = None
    index: Annotated[IndexRequestProto | None, Number(3, oneof="body")] = None
    search: Annotated[SearchRequestProto | None, Number(4, oneof="body")] = None
    control: Annotated[ControlRequestProto | None, Number(5, oneof="body")] = None
    delete: Annotated[DeleteRequestProto | None, Number(9, oneof="body")] = None
    update: Annotated[UpdateRequestProto | None, Number(10, oneof="body")] = None
    status: Annotated[StatusProto | None, Number(6)] = None
    routes: Annotated[list[RouteProto], Number(8)] = []
    queryset: Annotated[list[QueryLangProto], Number(7)] = []

    def __post_init__(self) -> None:
        one_of(self, *BODIES, required=True)


class EnvelopeProto(Message):
    """The envelope of a message, used inside Jina."""

    class CompressConfigProto(Message):
        """How a request is compressed."""

        algorithm: Annotated[str, Number(1)] = ""
        high_watermark: Annotated[UInt64, Number(2)] = 0
        low_watermark: Annotated[Float32, Number(3)] = 0.0
        parameters: Annotated[Struct, Number(4)] = {}

    class VersionProto(Message):
        """Version information."""

        jina: Annotated[str, Number(1)] = ""
        proto: Annotated[str, Number(2)] = ""
        vcs: Annotated[str, Number(3)] = ""

    sender_id: Annotated[str, Number(1)] = ""
    receiver_id: Annotated[str, Number(2)] = ""
    request_id: Annotated[str, Number(3)] = ""
    timeout: Annotated[UInt32, Number(4)] = 0
    routes: Annotated[list[RouteProto], Number(5)] = []
    version: Annotated[VersionProto | None, Number(6)] = None
    status: Annotated[StatusProto | None, Number(7)] = None
    request_type: Annotated[str, Number(9)] = ""
    check_version: Annotated[bool, Number(10)] = False
    compression: Annotated[CompressConfigProto | None, Number(11)] = None


class MessageProto(Message):
    """A message: envelope and request."""

    envelope: Annotated[EnvelopeProto | None, Number(1)] = None
    request: Annotated[RequestProto | None, Number(2)] = None


class JinaRPC(Service, Protocol, name="JinaRPC"):
    """Jina's gRPC service."""

    @rpc
    def Call(self, requests: Iterator[RequestProto]) -> Iterator[RequestProto]:
        """Pass in a Request and a filled Request with matches will be returned."""
        ...


class JinaRPCUpstream(JinaRPC, Protocol, name="jina.JinaRPC"):
    """:class:`JinaRPC` on its upstream path (package ``jina``), for Jina's generated clients."""
