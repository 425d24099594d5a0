"""Client helpers for ``ModelService``: upload and download whole models."""

from __future__ import annotations

from transport import Client

from .protocol import CHUNK_SIZE, ModelRequest, ModelResponse, ModelService, file_chunks

__all__ = ["download_model", "upload_model"]


def upload_model(
    client: Client,
    model_id: str,
    data: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
    timeout: float | None = None,
) -> ModelResponse:
    """Upload ``data`` as model ``model_id`` in chunks (the id travels as metadata ``model-id``)."""
    return client.call(
        ModelService.Upload,
        file_chunks(data, chunk_size),
        metadata=[("model-id", model_id)],
        timeout=timeout,
    )


def download_model(client: Client, model_id: str, *, timeout: float | None = None) -> bytes:
    """Download model ``model_id`` whole; raises RpcError NOT_FOUND for an unknown id."""
    chunks = client.call(ModelService.Download, ModelRequest(model_id=model_id), timeout=timeout)
    return b"".join(chunk.data for chunk in chunks)
