"""Channel and server options shared by clients, servers and the test helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "grpc_options"]

#: Default limit on one message, sent or received, by clients and servers: 4 MiB,
#: grpcio's own default for receiving. Larger messages end RESOURCE_EXHAUSTED.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def grpc_options(
    *,
    max_send_message_bytes: int | None = None,
    max_receive_message_bytes: int | None = None,
    extra: Sequence[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """Grpcio channel/server options with the library's message limits.

    ``None`` means :data:`DEFAULT_MAX_MESSAGE_BYTES`; ``-1`` means no limit.
    """
    send = DEFAULT_MAX_MESSAGE_BYTES if max_send_message_bytes is None else max_send_message_bytes
    receive = (
        DEFAULT_MAX_MESSAGE_BYTES
        if max_receive_message_bytes is None
        else max_receive_message_bytes
    )
    return [
        ("grpc.max_send_message_length", send),
        ("grpc.max_receive_message_length", receive),
        *extra,
    ]
