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
from typing import Protocol

from ...codec import Message
from ...ndarray import decode_ndarray
from ...service import Service, rpc
from ...types import Int32, Int64, UInt32, UInt64
from ...wellknown import EnumField, ProtoEnum, Struct, Timestamp, one_of


class DenseNdArrayProto(Message):
    """A (quantized) dense n-dim array: C-order bytes, shape and dtype."""

    class QuantizationMode(ProtoEnum):
        """How ``buffer`` is quantized."""

        NONE = 0  # stored in the original dtype
        FP16 = 1  # 2x smaller if dtype is set to FP32
        UINT8 = 2  # 4x smaller but lossy when dtype is FP32

    buffer: bytes = b""
    shape: list[UInt32] = []
    dtype: str = ""
    quantization: EnumField[QuantizationMode] = QuantizationMode.NONE
    max_val: float = 0.0
    min_val: float = 0.0
    scale: float = 0.0
    original_dtype: str = ""

    def __post_init__(self) -> None:
        # A buffer that does not hold dtype x shape is refused when decoded,
        # with the path of the array (the quantization is checked on use).
        if self.buffer or self.shape or self.dtype:
            decode_ndarray({"dtype": self.dtype, "shape": self.shape, "data": self.buffer})


class SparseNdArrayProto(Message):
    """A sparse array: the indices and values of its non-zero elements."""

    indices: DenseNdArrayProto | None = None  # int64 [N, ndims]
    values: DenseNdArrayProto | None = None  # [N]
    dense_shape: list[Int64] = []


class NdArrayProto(Message):
    """An n-dim array, dense or sparse (a oneof)."""

    dense: DenseNdArrayProto | None = None
    sparse: SparseNdArrayProto | None = None

    def __post_init__(self) -> None:
        one_of(self, "dense", "sparse")


class NamedScoreProto(Message):
    """A score of a document relative to ``refId``; scores can nest."""

    value: float = 0.0
    op_name: str = ""
    description: str = ""
    operands: list[NamedScoreProto] = []
    ref_id: str = ""


class DocumentProto(Message):
    """A document: content, embedding, and recursive chunks and matches."""

    id: str = ""
    content_hash: str = ""
    granularity: UInt32 = 0
    adjacency: UInt32 = 0
    level_name: str = ""
    parent_id: str = ""
    buffer: bytes = b""
    blob: NdArrayProto | None = None
    text: str = ""
    chunks: list[DocumentProto] = []
    weight: float = 0.0
    length: UInt32 = 0
    matches: list[DocumentProto] = []
    mime_type: str = ""
    uri: str = ""
    tags: Struct = {}
    location: list[UInt32] = []
    offset: UInt32 = 0
    embedding: NdArrayProto | None = None
    score: NamedScoreProto | None = None
    modality: str = ""
    evaluations: list[NamedScoreProto] = []


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

        name: str = ""
        args: list[str] = []
        stacks: list[str] = []
        executor: str = ""
        driver: str = ""

    code: EnumField[StatusCode] = StatusCode.SUCCESS
    description: str = ""
    exception: ExceptionProto | None = None


class RouteProto(Message):
    """One pod a message went through."""

    pod: str = ""
    pod_id: str = ""
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    status: StatusProto | None = None


class QueryLangProto(Message):
    """A query language setting, mapped to a driver."""

    name: str = ""
    parameters: Struct = {}
    disabled: bool = False
    priority: Int32 = 0


#: The members of ``RequestProto``'s ``body`` oneof.
BODIES = ("train", "index", "search", "control", "delete", "update")


class RequestProto(Message):
    """A request: its id and exactly one body (a oneof)."""

    class TrainRequestProto(Message):
        """Documents to train on."""

        docs: list[DocumentProto] = []
        groundtruths: list[DocumentProto] = []
        flush: bool = False

    class IndexRequestProto(Message):
        """Documents to index."""

        docs: list[DocumentProto] = []
        groundtruths: list[DocumentProto] = []

    class SearchRequestProto(Message):
        """Documents to query."""

        docs: list[DocumentProto] = []
        groundtruths: list[DocumentProto] = []

    class ControlRequestProto(Message):
        """A command to the pod."""

        class Command(ProtoEnum):
            """The control commands."""

            TERMINATE = 0  # shutdown the BasePod
            STATUS = 1  # check the status of the BasePod
            IDLE = 3  # tells the router that the dealer is idle

        command: EnumField[Command] = Command.TERMINATE
        args: Struct = {}

    class DeleteRequestProto(Message):
        """Documents to delete."""

        docs: list[DocumentProto] = []
        groundtruths: list[DocumentProto] = []

    class UpdateRequestProto(Message):
        """Documents to update."""

        docs: list[DocumentProto] = []
        groundtruths: list[DocumentProto] = []

    request_id: str = ""
    train: TrainRequestProto | None = None
    index: IndexRequestProto | None = None
    search: SearchRequestProto | None = None
    control: ControlRequestProto | None = None
    delete: DeleteRequestProto | None = None
    update: UpdateRequestProto | None = None
    status: StatusProto | None = None
    routes: list[RouteProto] = []
    queryset: list[QueryLangProto] = []

    def __post_init__(self) -> None:
        one_of(self, *BODIES, required=True)


class EnvelopeProto(Message):
    """The envelope of a message, used inside Jina."""

    class CompressConfigProto(Message):
        """How a request is compressed."""

        algorithm: str = ""
        high_watermark: UInt64 = 0
        low_watermark: float = 0.0
        parameters: Struct = {}

    class VersionProto(Message):
        """Version information."""

        jina: str = ""
        proto: str = ""
        vcs: str = ""

    sender_id: str = ""
    receiver_id: str = ""
    request_id: str = ""
    timeout: UInt32 = 0
    routes: list[RouteProto] = []
    version: VersionProto | None = None
    status: StatusProto | None = None
    request_type: str = ""
    check_version: bool = False
    compression: CompressConfigProto | None = None


class MessageProto(Message):
    """A message: envelope and request."""

    envelope: EnvelopeProto | None = None
    request: RequestProto | None = None


class JinaRPC(Service, Protocol, name="JinaRPC"):
    """Jina's gRPC service."""

    @rpc
    def Call(self, requests: Iterator[RequestProto]) -> Iterator[RequestProto]:
        """Pass in a Request and a filled Request with matches will be returned."""
        ...
