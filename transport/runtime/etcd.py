"""A small client of etcd's v3 JSON gateway: the calls a lease needs, with failover.

etcd (3.4 and later) answers ``POST /v3/...`` with JSON bodies next to its
gRPC API. The gateway's conventions, which every message here follows: keys
and values are standard base64; 64-bit numbers travel as strings (lease ids
exceed 2**53); zero values are omitted (no ``kvs`` for a missing key, no
``succeeded`` when a transaction fails, no ``TTL`` in the keepalive answer of
a lease that is gone, still HTTP 200); unknown fields are ignored, so requests
are built from Structs, never by hand. Streaming calls (``lease/keepalive``,
``watch``) answer lines of ``{"result": ...}``.

:class:`Gateway` sends each request to the member it talked to last, and on a
connection error, a timeout or a 5xx answer moves on to the next. Every
request has a deadline for the whole of it (connect, send, read the answer),
however slowly a member sends: one that drips its answer is a slow member.
Plain code over :mod:`http.client`; no grpc.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import msgspec

from ._deadline_http import DeadlineConnection
from .lease import LeaseError

__all__ = [
    "EtcdError",
    "EtcdUnavailableError",
    "Gateway",
    "Header",
    "KeyValue",
    "WatchEvent",
]

#: The largest answer read from a member (a lease record is a few hundred bytes).
MAX_ANSWER_BYTES = 1 << 20

T = TypeVar("T")


class EtcdError(LeaseError):
    """Raised when an etcd member refuses a request or answers something unexpected."""


class EtcdUnavailableError(EtcdError):
    """Raised when no etcd member answered a request within its timeout."""


# --- gateway messages (only the fields used; names as the gateway spells them)


class Header(msgspec.Struct, frozen=True):
    """Which member answered, at which store revision, in which raft term."""

    member_id: str = "0"
    revision: str = "0"
    raft_term: str = "0"


class KeyValue(msgspec.Struct, frozen=True):
    """One key: its value, the revision that created it and the lease it is attached to."""

    key: bytes = b""
    value: bytes = b""
    create_revision: str = "0"
    mod_revision: str = "0"
    lease: str = "0"


class _Range(msgspec.Struct):
    key: bytes


class _RangeReply(msgspec.Struct):
    header: Header = Header()
    kvs: list[KeyValue] = []


class _Compare(msgspec.Struct, omit_defaults=True):
    # The operand is a oneof in etcd: set exactly one of these (the target's).
    key: bytes
    target: str
    create_revision: str | None = None
    lease: str | None = None
    result: str = "EQUAL"


class _Put(msgspec.Struct):
    key: bytes
    value: bytes
    lease: str


class _Op(msgspec.Struct):
    request_put: _Put


class _Txn(msgspec.Struct):
    compare: list[_Compare]
    success: list[_Op]


class _TxnReply(msgspec.Struct):
    header: Header = Header()
    succeeded: bool = False


class _Grant(msgspec.Struct):
    TTL: str


class _LeaseId(msgspec.Struct):
    ID: str


class _GrantReply(msgspec.Struct):
    header: Header = Header()
    ID: str = "0"
    TTL: str = "0"
    error: str = ""


class _KeepAlive(msgspec.Struct, frozen=True):
    header: Header = Header()
    TTL: str = "0"


class _KeepAliveReply(msgspec.Struct):
    result: _KeepAlive = _KeepAlive()


class _Revoked(msgspec.Struct):
    header: Header = Header()


class _WatchCreate(msgspec.Struct):
    key: bytes
    start_revision: str
    prev_kv: bool = True  # a DELETE then carries the value it deleted


class _Watch(msgspec.Struct):
    create_request: _WatchCreate


class WatchEvent(msgspec.Struct, frozen=True):
    """A change of a watched key: ``PUT`` (the type the gateway leaves out) or ``DELETE``.

    ``prev_kv`` is the key as it was before the change (``None`` when it did
    not exist, or etcd has compacted that revision away).
    """

    kv: KeyValue = KeyValue()
    type: str = "PUT"
    prev_kv: KeyValue | None = None


class _WatchResult(msgspec.Struct, frozen=True):
    header: Header = Header()
    created: bool = False
    canceled: bool = False
    cancel_reason: str = ""
    events: list[WatchEvent] = []


class _WatchReply(msgspec.Struct):
    result: _WatchResult = _WatchResult()
    error: Any = None


class _Refusal(msgspec.Struct):
    message: str = ""
    code: int = 0


_encoder = msgspec.json.Encoder()
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind)
    for kind in (_RangeReply, _TxnReply, _GrantReply, _KeepAliveReply, _Revoked, _WatchReply)
}
_refusal = msgspec.json.Decoder(_Refusal)

# gRPC codes that mean "this member cannot answer now, another may": UNAVAILABLE,
# DEADLINE_EXCEEDED, and UNKNOWN (etcdserver's "leader changed", "no leader").
_TRY_ANOTHER = {14, 4, 2}


def number(text: str, what: str) -> int:
    """A 64-bit number the gateway sent as a string, or :class:`EtcdError` naming ``what``."""
    if not (text.isascii() and text.lstrip("-").isdigit() and len(text) <= 20):
        raise EtcdError(f"etcd answered {what} {text[:40]!r}, not a number")
    return int(text)


class _MemberBusyError(Exception):
    """Raised when a member cannot answer now (connection, timeout, 5xx): try the next one."""


class Gateway:
    """Requests to an etcd cluster through its JSON gateway, failing over between members.

    ``endpoints`` are ``(host, port)`` pairs of client URLs (plain HTTP);
    ``timeout`` bounds each request on one member, from connecting to the
    last byte of the answer. Safe to share between
    threads (requests are serialised; watches use their own connections).
    """

    def __init__(self, endpoints: Sequence[tuple[str, int]], *, timeout: float = 1.0) -> None:
        if not endpoints:
            raise ValueError("etcd needs at least one endpoint")
        if timeout <= 0:
            raise ValueError(f"the etcd request timeout must be positive, not {timeout}")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._connections: dict[int, DeadlineConnection] = {}
        self._current = 0

    def __repr__(self) -> str:
        return "Gateway(" + ",".join(f"{host}:{port}" for host, port in self.endpoints) + ")"

    @property
    def member(self) -> str:
        """``HOST:PORT`` of the member asked first: the one that answered last."""
        return self._name(self._current)

    def call(
        self, path: str, body: object, reply: type[T], *, member: int | None = None
    ) -> tuple[T, int]:
        """POST ``body`` to ``/v3/<path>``; the decoded ``reply`` and the member that answered.

        With ``member`` (an index into :attr:`endpoints`) only that member is
        asked; otherwise each in turn, from the one that answered last.
        """
        payload = _encoder.encode(body)
        with self._lock:
            order = [member] if member is not None else self._order()
            failures = []
            for index in order:
                try:
                    data = self._post(index, path, payload)
                except _MemberBusyError as exc:
                    failures.append(f"{self._name(index)}: {exc}")
                    continue
                self._current = index
                return self._decode(data, reply, path, index), index
        raise EtcdUnavailableError(f"etcd did not answer /v3/{path}: " + "; ".join(failures))

    def watch(
        self, key: bytes, start_revision: int, *, idle_timeout: float
    ) -> Iterator[tuple[Header, list[WatchEvent]]]:
        """Changes of ``key`` from ``start_revision`` on, as ``(header, events)`` batches.

        Ends (without error) once ``idle_timeout`` seconds pass with no change,
        or when the caller closes the generator; raises :class:`EtcdError` if
        no member accepts the watch or the stream breaks.
        """
        body = _encoder.encode(_Watch(_WatchCreate(key, str(start_revision))))
        failures = []
        for index in self._order():
            connection = self._connect(index)
            connection.ends_by(time.monotonic() + self.timeout)
            try:
                connection.request("POST", "/v3/watch", body, {"Content-Type": "application/json"})
                answer = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                failures.append(f"{self._name(index)}: {exc}")
                continue
            try:
                if answer.status != 200:
                    raise EtcdError(f"{self._name(index)} refused the watch: HTTP {answer.status}")
                yield from self._stream(connection, answer, index, idle_timeout)
                return
            finally:
                connection.close()
        raise EtcdUnavailableError("no etcd member accepted the watch: " + "; ".join(failures))

    def close(self) -> None:
        """Close the open connections."""
        with self._lock:
            for connection in self._connections.values():
                connection.close()
            self._connections.clear()

    def _stream(
        self,
        connection: DeadlineConnection,
        answer: http.client.HTTPResponse,
        index: int,
        idle_timeout: float,
    ) -> Iterator[tuple[Header, list[WatchEvent]]]:
        decoder = _decoders[_WatchReply]
        deadline = time.monotonic() + idle_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            connection.ends_by(deadline)
            try:
                line = answer.readline(MAX_ANSWER_BYTES)
            except TimeoutError:
                return
            except (OSError, http.client.HTTPException) as exc:
                raise EtcdError(f"the watch on {self._name(index)} broke: {exc}") from exc
            if not line:
                raise EtcdError(f"{self._name(index)} ended the watch")
            if not line.strip():
                continue
            try:
                reply: _WatchReply = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise EtcdError(f"{self._name(index)} sent a bad watch message: {exc}") from None
            if reply.error is not None or reply.result.canceled:
                reason = reply.result.cancel_reason or str(reply.error)
                raise EtcdError(f"{self._name(index)} cancelled the watch: {reason}")
            if reply.result.events:
                deadline = time.monotonic() + idle_timeout
            yield reply.result.header, reply.result.events

    def _order(self) -> list[int]:
        count = len(self.endpoints)
        return [(self._current + step) % count for step in range(count)]

    def _name(self, index: int) -> str:
        host, port = self.endpoints[index]
        return f"{host}:{port}"

    def _connect(self, index: int) -> DeadlineConnection:
        host, port = self.endpoints[index]
        return DeadlineConnection(host, port)

    def _post(self, index: int, path: str, payload: bytes) -> bytes:
        connection = self._connections.get(index)
        if connection is None:
            connection = self._connections[index] = self._connect(index)
        connection.ends_by(time.monotonic() + self.timeout)
        try:
            connection.request("POST", f"/v3/{path}", payload, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            data = answer.read(MAX_ANSWER_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            # A timed-out or broken connection may carry a late answer: never reuse it.
            connection.close()
            del self._connections[index]
            raise _MemberBusyError(str(exc) or type(exc).__name__) from exc
        if len(data) > MAX_ANSWER_BYTES or answer.will_close:
            connection.close()
            del self._connections[index]
        if len(data) > MAX_ANSWER_BYTES:
            raise EtcdError(f"{self._name(index)} answered /v3/{path} with over 1 MiB")
        if answer.status == 200:
            return data
        try:
            refusal = _refusal.decode(data)
        except msgspec.DecodeError:
            refusal = _Refusal(message=data[:200].decode(errors="replace"))
        if answer.status >= 500 or refusal.code in _TRY_ANOTHER:
            raise _MemberBusyError(f"HTTP {answer.status}: {refusal.message}")
        raise EtcdError(
            f"{self._name(index)} refused /v3/{path}: HTTP {answer.status}: {refusal.message}"
        )

    def _decode(self, data: bytes, reply: type[T], path: str, index: int) -> T:
        try:
            decoded: T = _decoders[reply].decode(data)
        except msgspec.DecodeError as exc:
            raise EtcdError(
                f"{self._name(index)} answered /v3/{path} unexpectedly: {exc}"
            ) from None
        return decoded


# --- the calls a lease needs


def get(gateway: Gateway, key: bytes) -> tuple[KeyValue | None, Header, int]:
    """A linearizable read of ``key``: its value (``None`` if absent), the header, the member."""
    reply, index = gateway.call("kv/range", _Range(key), _RangeReply)
    return (reply.kvs[0] if reply.kvs else None), reply.header, index


def create(gateway: Gateway, key: bytes, value: bytes, lease: int) -> tuple[bool, Header]:
    """Put ``key`` on ``lease`` only if it does not exist; whether it did, and the header."""
    txn = _Txn(
        compare=[_Compare(key=key, target="CREATE", create_revision="0")],
        success=[_Op(_Put(key, value, str(lease)))],
    )
    reply, _ = gateway.call("kv/txn", txn, _TxnReply)
    return reply.succeeded, reply.header


def rewrite(
    gateway: Gateway,
    key: bytes,
    value: bytes,
    lease: int,
    created: int,
    *,
    member: int | None = None,
) -> tuple[bool, Header]:
    """Replace the value of ``key`` if it is still the one created at ``created`` on ``lease``.

    Whether it was, and the header; ``member`` as for :meth:`Gateway.call`.
    """
    txn = _Txn(
        compare=[
            _Compare(key=key, target="CREATE", create_revision=str(created)),
            _Compare(key=key, target="LEASE", lease=str(lease)),
        ],
        success=[_Op(_Put(key, value, str(lease)))],
    )
    reply, _ = gateway.call("kv/txn", txn, _TxnReply, member=member)
    return reply.succeeded, reply.header


def grant(gateway: Gateway, ttl: int) -> tuple[int, int]:
    """A new lease of ``ttl`` seconds: its id and the TTL etcd granted (at least its minimum)."""
    reply, index = gateway.call("lease/grant", _Grant(str(ttl)), _GrantReply)
    if reply.error:
        raise EtcdError(f"{gateway._name(index)} refused a lease: {reply.error}")
    return number(reply.ID, "a lease id"), number(reply.TTL, "a lease TTL")


def keep_alive(gateway: Gateway, lease: int) -> tuple[int, Header, int]:
    """Renew ``lease``: its TTL (0 when the lease is gone), the header and the member."""
    reply, index = gateway.call("lease/keepalive", _LeaseId(str(lease)), _KeepAliveReply)
    return number(reply.result.TTL, "a lease TTL"), reply.result.header, index


def revoke(gateway: Gateway, lease: int) -> None:
    """Revoke ``lease``, deleting the keys attached to it (a lease already gone is fine)."""
    try:
        gateway.call("lease/revoke", _LeaseId(str(lease)), _Revoked)
    except EtcdError as exc:
        if "lease not found" not in str(exc):
            raise
