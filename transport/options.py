"""Channel and server options: the message limits, and the protections of every server.

:func:`grpc_options` is for channels and servers alike (the message limits).
:func:`server_options` adds :data:`SERVER_PROTECTIONS`, the HTTP/2 and queueing
bounds that every server this library builds starts with: the daemon, the
``serve`` commands of the examples and of interop, and the test helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

__all__ = [
    "DEFAULT_MAX_CALLS_IN_FLIGHT",
    "DEFAULT_MAX_CONCURRENT_CALLS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "SERVER_PROTECTIONS",
    "compression_of",
    "grpc_options",
    "keepalive_enforcement",
    "server_options",
]

#: Default limit on one message, sent or received, by clients and servers: 4 MiB,
#: grpcio's own default for receiving. Larger messages end RESOURCE_EXHAUSTED.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

#: Default bound on the calls a daemon serves at once (``maximum_concurrent_rpcs``);
#: calls beyond it end RESOURCE_EXHAUSTED at once.
DEFAULT_MAX_CONCURRENT_CALLS = 256

#: The grpc-core arguments every server the library builds sets, and why.
#: Each is overridable: ``server_options(extra=[(name, value)])``.
SERVER_PROTECTIONS: Mapping[str, int] = {
    # One connection holding unbounded streams, and rapid reset (streams opened
    # and reset at once, CVE-2023-44487): at most 64 open per connection
    # (SETTINGS_MAX_CONCURRENT_STREAMS); a client queues calls beyond it. A
    # stream counts while it is open on the wire, as the client counts it, so a
    # client that keeps to 64 is never refused. grpc-core's overload protection
    # would also count each stream until the application has released its call
    # (after the client saw it end) and refuse (REFUSED_STREAM) well-behaved
    # clients at the limit: it is off, and the bound on calls waiting below
    # bounds what paced resets can hold instead.
    "grpc.max_concurrent_streams": 64,
    "grpc.http.overload_protection": 0,
    # Oversized or HPACK-inflated header lists: past 8 KiB some calls are
    # refused, past 16 KiB every call (RESOURCE_EXHAUSTED).
    "grpc.max_metadata_size": 8 * 1024,
    "grpc.absolute_max_metadata_size": 16 * 1024,
    # PING floods: pings without data more often than every 5 minutes are
    # strikes; after 2, the server closes the connection (GOAWAY ENHANCE_YOUR_CALM).
    "grpc.http2.min_ping_interval_without_data_ms": 5 * 60 * 1000,
    "grpc.http2.max_ping_strikes": 2,
    # Slowloris: a connection must finish its handshake (TLS and HTTP/2
    # preface) within 20 s, and one without calls is closed after 10 minutes
    # (GOAWAY; clients reconnect on their next call).
    "grpc.server_handshake_timeout_ms": 20 * 1000,
    "grpc.max_connection_idle_ms": 10 * 60 * 1000,
    # Calls grpc-core holds for the application, reset ones included: past
    # 1,000 some new calls end CANCELLED, past 2,000 all. This bounds the memory
    # of streams opened and reset a few at a time (paced resets) on every
    # connection together; well-behaved clients hold at most 64 per connection.
    "grpc.server.max_pending_requests": 1_000,
    "grpc.server.max_pending_requests_hard_limit": 2_000,
}


#: Default bound on the unary calls one client has in flight on its channel:
#: three quarters of the servers' stream bound, so that a burst on one channel
#: stays below it and is served, not refused, even by a server that counts
#: streams until it has freed them (``max_calls_in_flight=None``: no bound).
DEFAULT_MAX_CALLS_IN_FLIGHT = int(SERVER_PROTECTIONS["grpc.max_concurrent_streams"]) * 3 // 4


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


def server_options(
    *,
    max_send_message_bytes: int | None = None,
    max_receive_message_bytes: int | None = None,
    extra: Sequence[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """Grpcio server options: :func:`grpc_options` and :data:`SERVER_PROTECTIONS`.

    An entry of ``extra`` replaces the protection of the same name, so each
    can be changed; each name appears once in the result.
    """
    options = dict(
        grpc_options(
            max_send_message_bytes=max_send_message_bytes,
            max_receive_message_bytes=max_receive_message_bytes,
        )
    )
    options.update(SERVER_PROTECTIONS)
    options.update(extra)
    return list(options.items())


#: What ``compression=`` and ``--compression`` accept, by name.
COMPRESSIONS = {"none": grpc.Compression.NoCompression, "gzip": grpc.Compression.Gzip}


def compression_of(value: grpc.Compression | str | None) -> grpc.Compression | None:
    """``grpc.Compression`` for ``value``: ``None``, a ``grpc.Compression``, "gzip" or "none"."""
    if value is None or isinstance(value, grpc.Compression):
        return value
    found = COMPRESSIONS.get(value)
    if found is None:
        raise ValueError(f"compression must be one of {sorted(COMPRESSIONS)}, got {value!r}")
    return found


def keepalive_enforcement(
    *, min_ping_interval: float = 10.0, permit_without_calls: bool = True, max_ping_strikes: int = 2
) -> list[tuple[str, Any]]:
    """Server options that accept clients' keepalive pings every ``min_ping_interval`` seconds.

    Pass them as ``server_options(extra=keepalive_enforcement(...))``: they replace
    the PING-flood protection of :data:`SERVER_PROTECTIONS` (a ping without data
    at most every 5 minutes). ``min_ping_interval`` must not exceed the clients'
    ``Keepalive(time=...)``, and ``permit_without_calls`` must be True if theirs
    is; else the server counts their pings as strikes and, past
    ``max_ping_strikes``, closes the connection (GOAWAY ``too_many_pings``).
    """
    if min_ping_interval < 0 or max_ping_strikes < 0:
        raise ValueError(
            "keepalive_enforcement(): min_ping_interval and max_ping_strikes must not be negative"
        )
    return [
        ("grpc.keepalive_permit_without_calls", int(permit_without_calls)),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", round(min_ping_interval * 1000)),
        ("grpc.http2.min_ping_interval_without_data_ms", round(min_ping_interval * 1000)),
        ("grpc.http2.max_ping_strikes", max_ping_strikes),
    ]
