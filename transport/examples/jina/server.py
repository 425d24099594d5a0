"""The reference Jina pod: an in-memory index searched by cosine similarity."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np

from transport import Context, RpcError, StatusCode

from .._in_flight import CallsInFlight
from .arrays import element_count, to_numpy
from .protocol import DocumentProto, NamedScoreProto, RequestProto, StatusProto

__all__ = ["MAX_INDEX_ELEMENTS", "MAX_REQUEST_ELEMENTS", "TOP_K", "JinaServer"]

#: The most matches a search returns per query document.
TOP_K = 10
#: The most embedding values one request may decode to (sparse arrays as dense),
#: counted before any is built: at most 16 bytes each while decoding, 8 once kept.
MAX_REQUEST_ELEMENTS = 1 << 22
#: The most embedding values the index keeps (8 bytes each: 256 MiB).
MAX_INDEX_ELEMENTS = 1 << 25

Code = StatusProto.StatusCode
Command = RequestProto.ControlRequestProto.Command
Vector = np.ndarray[Any, np.dtype[np.float64]]


def _invalid(message: str, field: str) -> RpcError:
    return RpcError(StatusCode.INVALID_ARGUMENT, f"{field}: {message}", {"field": field})


def _over_budget(docs: list[DocumentProto], body: str) -> None:
    """Refuse embeddings that would decode past :data:`MAX_REQUEST_ELEMENTS`, decoding none."""
    total = 0
    for i, doc in enumerate(docs):
        if doc.embedding is None:
            continue
        try:
            total += element_count(doc.embedding)
        except ValueError as exc:
            raise _invalid(str(exc), f"{body}.docs[{i}].embedding") from None
        if total > MAX_REQUEST_ELEMENTS:
            raise RpcError(
                StatusCode.RESOURCE_EXHAUSTED,
                f"{body}.docs: the embeddings hold over {MAX_REQUEST_ELEMENTS} values",
            )


class JinaServer:
    """Serves ``JinaRPC``: ``index``, ``search``, ``delete``, ``update`` and ``control``.

    Documents are kept by id with their embeddings (flattened to vectors, all
    of one length); a search answers each query document with the indexed
    documents most similar to it by cosine, at most ``top_k``. The index keeps
    at most ``max_elements`` embedding values; an index or update past it is
    RESOURCE_EXHAUSTED.
    """

    def __init__(self, *, top_k: int = TOP_K, max_elements: int = MAX_INDEX_ELEMENTS) -> None:
        self.top_k = top_k
        self.max_elements = max_elements
        self._elements = 0  # values held in _vectors
        self.calls = CallsInFlight()
        self._lock = threading.Lock()
        self.docs: dict[str, DocumentProto] = {}
        self._vectors: dict[str, Vector] = {}
        self._matrix: tuple[list[str], Vector] | None = None  # unit rows, rebuilt on change

    def Call(self, requests: Iterator[RequestProto], context: Context) -> Iterator[RequestProto]:
        """Answer each request in order, keeping its ``requestId``."""
        with self.calls.track():
            for request in requests:
                yield self.handle(request)

    def handle(self, request: RequestProto) -> RequestProto:
        """The response to one request; raises RpcError INVALID_ARGUMENT for bad input."""
        status = StatusProto(code=Code.SUCCESS)
        if request.index is not None:
            self._store(request.index.docs, "index")
        elif request.update is not None:
            self._store(request.update.docs, "update")
        elif request.delete is not None:
            self._delete(request.delete.docs)
        elif request.search is not None:
            _over_budget(request.search.docs, "search")
            docs = [
                self._search(doc, f"search.docs[{i}]") for i, doc in enumerate(request.search.docs)
            ]
            search = msgspec.structs.replace(request.search, docs=docs)
            return msgspec.structs.replace(request, search=search, status=status)
        elif request.control is not None:
            status = self._control(request.control.command)
        else:  # train: the reference pod has no model to train
            status = StatusProto(
                code=Code.ERROR,
                description="this pod does not train",
                exception=StatusProto.ExceptionProto(name="NotImplementedError", args=["train"]),
            )
        return msgspec.structs.replace(request, status=status)

    def _control(self, command: RequestProto.ControlRequestProto.Command) -> StatusProto:
        if command is Command.STATUS:
            with self._lock:
                count = len(self.docs)
            return StatusProto(code=Code.READY, description=f"{count} documents indexed")
        if command is Command.TERMINATE:
            return StatusProto(code=Code.ERROR_NOTALLOWED, description="TERMINATE over JinaRPC")
        return StatusProto(code=Code.SUCCESS)

    def _vector(self, doc: DocumentProto, field: str) -> Vector | None:
        if doc.embedding is None:
            return None
        try:
            array = to_numpy(doc.embedding)
        except (TypeError, ValueError) as exc:
            raise _invalid(str(exc), f"{field}.embedding") from None
        if array.dtype.kind == "c":
            raise _invalid("a complex embedding has no cosine here", f"{field}.embedding")
        vector = array.astype(np.float64).reshape(-1)
        if not np.isfinite(vector).all():
            raise _invalid("the embedding holds NaN or infinity", f"{field}.embedding")
        return vector

    def _length(self) -> int | None:
        # Every indexed embedding has the same length (held under the lock).
        return len(next(iter(self._vectors.values()))) if self._vectors else None

    def _store(self, docs: list[DocumentProto], body: str) -> None:
        _over_budget(docs, body)
        vectors: list[Vector | None] = []
        for i, doc in enumerate(docs):
            if not doc.id:
                raise _invalid("a document needs an id", f"{body}.docs[{i}].id")
            vectors.append(self._vector(doc, f"{body}.docs[{i}]"))
        with self._lock:
            length = self._length()
            for i, vector in enumerate(vectors):
                if vector is None:
                    continue
                if length is not None and len(vector) != length:
                    raise _invalid(
                        f"the embedding has {len(vector)} values, the index holds {length}",
                        f"{body}.docs[{i}].embedding",
                    )
                length = len(vector)
            kept = {doc.id: vector for doc, vector in zip(docs, vectors, strict=True)}
            freed = sum(len(self._vectors.get(key, ())) for key in kept)
            added = sum(len(vector) for vector in kept.values() if vector is not None)
            if self._elements - freed + added > self.max_elements:
                raise RpcError(
                    StatusCode.RESOURCE_EXHAUSTED,
                    f"{body}: the index would hold over {self.max_elements} embedding values",
                )
            self._elements += added - freed
            for doc in docs:
                self.docs[doc.id] = doc
            for key, vector in kept.items():
                if vector is not None:
                    self._vectors[key] = vector
                else:
                    self._vectors.pop(key, None)
            self._matrix = None

    def _delete(self, docs: list[DocumentProto]) -> None:
        with self._lock:
            for doc in docs:
                self.docs.pop(doc.id, None)
                self._elements -= len(self._vectors.pop(doc.id, ()))
            self._matrix = None

    def _unit_rows(self) -> tuple[list[str], Vector]:
        if self._matrix is None:
            ids = list(self._vectors)
            rows = np.array([self._vectors[i] for i in ids], dtype=np.float64).reshape(len(ids), -1)
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            self._matrix = ids, rows / np.where(norms == 0, 1.0, norms)
        return self._matrix

    def _search(self, query: DocumentProto, field: str) -> DocumentProto:
        vector = self._vector(query, field)
        if vector is None:
            raise _invalid("a query document needs an embedding", f"{field}.embedding")
        with self._lock:
            length = self._length()
            if length is not None and len(vector) != length:
                raise _invalid(
                    f"the embedding has {len(vector)} values, the index holds {length}",
                    f"{field}.embedding",
                )
            ids, rows = self._unit_rows()
            norm = np.linalg.norm(vector)
            similarity = rows @ (vector / norm if norm else vector)
            best = np.argsort(-similarity, kind="stable")[: self.top_k]
            matches = [
                msgspec.structs.replace(
                    self.docs[ids[k]],
                    adjacency=query.adjacency + 1,
                    score=NamedScoreProto(
                        value=float(similarity[k]), op_name="cosine", ref_id=query.id
                    ),
                )
                for k in best
            ]
        return msgspec.structs.replace(query, matches=matches)
