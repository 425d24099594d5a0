"""Seed 004: Jina's ``JinaRPC``, served and called.

``python -m transport.examples.jina serve --port 0`` serves an in-memory
index; ``demo`` indexes documents with (quantized) embeddings, searches them
and asks the pod's status through a :class:`JinaSession`.
"""

from __future__ import annotations

from .arrays import MAX_SPARSE_ELEMENTS as MAX_SPARSE_ELEMENTS
from .arrays import element_count as element_count
from .arrays import from_numpy as from_numpy
from .arrays import to_numpy as to_numpy
from .client import JinaSession as JinaSession
from .protocol import BODIES as BODIES
from .protocol import DenseNdArrayProto as DenseNdArrayProto
from .protocol import DocumentProto as DocumentProto
from .protocol import EnvelopeProto as EnvelopeProto
from .protocol import JinaRPC as JinaRPC
from .protocol import JinaRPCUpstream as JinaRPCUpstream
from .protocol import MessageProto as MessageProto
from .protocol import NamedScoreProto as NamedScoreProto
from .protocol import NdArrayProto as NdArrayProto
from .protocol import QueryLangProto as QueryLangProto
from .protocol import RequestProto as RequestProto
from .protocol import RouteProto as RouteProto
from .protocol import SparseNdArrayProto as SparseNdArrayProto
from .protocol import StatusProto as StatusProto
from .server import MAX_INDEX_ELEMENTS as MAX_INDEX_ELEMENTS
from .server import MAX_REQUEST_ELEMENTS as MAX_REQUEST_ELEMENTS
from .server import TOP_K as TOP_K
from .server import JinaServer as JinaServer

__all__ = [
    "BODIES",
    "MAX_SPARSE_ELEMENTS",
    "TOP_K",
    "DenseNdArrayProto",
    "DocumentProto",
    "EnvelopeProto",
    "JinaRPC",
    "JinaRPCUpstream",
    "JinaServer",
    "JinaSession",
    "MessageProto",
    "NamedScoreProto",
    "NdArrayProto",
    "QueryLangProto",
    "RequestProto",
    "RouteProto",
    "SparseNdArrayProto",
    "StatusProto",
    "from_numpy",
    "to_numpy",
]
