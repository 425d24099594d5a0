"""The client side of ``JinaRPC.Call``: one open stream, a request and its response at a time."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from types import TracebackType

from transport import BidiStream, Client

from .protocol import DocumentProto, JinaRPC, RequestProto, StatusProto

__all__ = ["JinaSession"]

Control = RequestProto.ControlRequestProto


class JinaSession:
    """One ``Call`` stream to a Jina pod: each request is answered before the next is sent.

    Use it as a context manager; leaving it ends the stream.
    """

    def __init__(self, client: Client, *, timeout: float | None = None) -> None:
        self._stream: BidiStream[RequestProto, RequestProto] = client.open(
            JinaRPC.Call, timeout=timeout
        )

    def request(self, request: RequestProto) -> RequestProto:
        """Send ``request`` and return its response (same ``requestId``)."""
        self._stream.write(request)
        response = next(self._stream)
        if response.request_id != request.request_id:
            raise ValueError(
                f"response {response.request_id!r} does not answer request {request.request_id!r}"
            )
        return response

    def index(self, docs: Iterable[DocumentProto]) -> StatusProto | None:
        """Index ``docs`` (by id, with their embeddings); return the response's status."""
        body = RequestProto.IndexRequestProto(docs=list(docs))
        return self.request(RequestProto(request_id=_new_id(), index=body)).status

    def search(self, docs: Iterable[DocumentProto]) -> list[DocumentProto]:
        """The query ``docs``, each with its ``matches`` filled, best first."""
        body = RequestProto.SearchRequestProto(docs=list(docs))
        response = self.request(RequestProto(request_id=_new_id(), search=body))
        return response.search.docs if response.search is not None else []

    def delete(self, ids: Iterable[str]) -> StatusProto | None:
        """Delete the documents with these ids; return the response's status."""
        body = RequestProto.DeleteRequestProto(docs=[DocumentProto(id=i) for i in ids])
        return self.request(RequestProto(request_id=_new_id(), delete=body)).status

    def status(self) -> StatusProto | None:
        """Ask the pod for its status (``control`` with ``STATUS``)."""
        control = Control(command=Control.Command.STATUS)
        return self.request(RequestProto(request_id=_new_id(), control=control)).status

    def close(self) -> None:
        """End the stream: half-close, then drain what the pod still sends."""
        self._stream.done_writing()
        for _ in self._stream:
            pass

    def __enter__(self) -> JinaSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self._stream.cancel()


def _new_id() -> str:
    return uuid.uuid4().hex
