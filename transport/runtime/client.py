"""Call a model daemon: :func:`dial_leader` and the fenced :class:`Client` it returns.

Every call but ``health()`` names the expected owner in metadata
``x-owner-instance``, so a client never acts on a stale owner after a
takeover: it gets ABORTED (another owner serves there) or UNAVAILABLE (the
owner lost its lease). With a lease store the client can :meth:`~Client.resolve`
the current owner again, and calls marked ``retry=True`` do so by themselves.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import numpy.typing as npt

from ..client.sync import Client as RpcClient
from ..encoding.wires import check
from ..errors import RpcError
from ..service import UnaryUnary
from ..status import StatusCode
from .contract import HealthStatus, ModelInfo, OpenSessionRequest
from .fence import OWNER_METADATA_KEY
from .lease import LeaseRecord, LeaseStore, utc_now
from .lease_url import open_lease
from .wire import (
    CloseSessionRequest,
    GenerateRequest,
    HealthRequest,
    InferRequest,
    Runtime,
)

__all__ = ["DEFAULT_RESOLVE_TIMEOUT", "Client", "RemoteSession", "dial_leader"]

#: Seconds a client waits for a lease holder when resolving or retrying.
DEFAULT_RESOLVE_TIMEOUT = 10.0

#: Codes after which a call marked safe to retry re-resolves the owner and retries.
RETRY_CODES = frozenset({StatusCode.ABORTED, StatusCode.UNAVAILABLE})
#: Codes that mean a session died with its owner; closing it is then a no-op.
GONE_CODES = frozenset({StatusCode.NOT_FOUND, StatusCode.ABORTED, StatusCode.UNAVAILABLE})

Req = TypeVar("Req")
Res = TypeVar("Res")

_HEALTH = HealthRequest()


def current_owner(store: LeaseStore) -> LeaseRecord | None:
    """The lease record if some owner holds it now, else ``None``."""
    record = store.read()
    if record is None or record.expired(utc_now()):
        return None
    return record


def fence_metadata(owner: str) -> tuple[tuple[str, str | bytes], ...]:
    """The request metadata that fences a call on ``owner`` (none for an unfenced server)."""
    return ((OWNER_METADATA_KEY, owner),) if owner else ()


class OwnerWatch:
    """The latest owner record a lease store that can watch reports (etcd; a file cannot).

    Clients take it before each call and re-target at once after a takeover,
    instead of waiting to be refused; every call stays fenced on the server.
    """

    def __init__(self, lease: LeaseStore | None) -> None:
        self._latest: LeaseRecord | None = None
        self._stop = None if lease is None else lease.follow(self._changed)

    def _changed(self, record: LeaseRecord | None) -> None:
        if record is not None:
            self._latest = record

    def take(self) -> LeaseRecord | None:
        """The record reported since the last call, if any."""
        latest, self._latest = self._latest, None
        return latest

    def close(self) -> None:
        """Stop watching."""
        if self._stop is not None:
            self._stop()


class Backoff:
    """Pauses between retries, doubling from 50 ms to 0.5 s, until a deadline."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self._pause = 0.05

    def next(self) -> float | None:
        """Seconds to pause before the next try, or ``None`` once the deadline is near."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            return None
        pause, self._pause = min(self._pause, left), min(self._pause * 2, 0.5)
        return pause


def no_owner(store: LeaseStore, timeout: float) -> RpcError:
    """The error when no owner held the lease within ``timeout``."""
    return RpcError(StatusCode.UNAVAILABLE, f"no owner held the lease {store!r} within {timeout} s")


class RemoteSession:
    """A session opened on a daemon: ``infer``, ``generate``, ``close``.

    It belongs to the owner that opened it: after a takeover its handle is
    NOT_FOUND everywhere; open a new session.
    """

    def __init__(self, client: Client, handle: str, info: ModelInfo) -> None:
        self.client = client
        self.handle = handle
        self.info = info
        self.closed = False

    def infer(
        self, inputs: Mapping[str, npt.NDArray[Any]], *, timeout: float | None = None
    ) -> dict[str, npt.NDArray[Any]]:
        """Run the model on named arrays; returns named arrays."""
        request = InferRequest(handle=self.handle, inputs=dict(inputs))
        return self.client._call(Runtime.Infer, request, timeout=timeout).outputs

    def generate(
        self, prompt: str, max_tokens: int = 0, *, timeout: float | None = None
    ) -> Generator[str, None, None]:
        """Stream the generated text pieces (at most ``max_tokens``; 0: the backend's limit).

        Closing the generator early cancels the call.
        """
        request = GenerateRequest(handle=self.handle, prompt=prompt, max_tokens=max_tokens)
        self.client._follow()
        with self.client._rpc.call(Runtime.Generate, request, timeout=timeout) as stream:
            for token in stream:
                yield token.text

    def close(self, *, timeout: float | None = None) -> None:
        """Close the session (once); a no-op if it already died with its owner."""
        if self.closed:
            return
        self.closed = True
        try:
            self.client._call(
                Runtime.CloseSession, CloseSessionRequest(handle=self.handle), timeout=timeout
            )
        except RpcError as exc:
            if exc.code not in GONE_CODES:
                raise

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    """A fenced connection to the daemon that owns a lease (sync).

    Make one with :func:`dial_leader`. ``endpoint`` and ``expected_owner`` are
    the current target; :meth:`resolve` reads them again from the lease store.
    With a store that watches (etcd), each call first moves to the owner the
    watch last reported.
    """

    def __init__(
        self,
        endpoint: str,
        expected_owner: str,
        *,
        lease: LeaseStore | None = None,
        timeout: float | None = None,
        resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
        wire: str = "json",
    ) -> None:
        self.lease = lease
        self.wire = wire  # the wire of every call: "json" or "protobuf"
        self.timeout = timeout
        self.resolve_timeout = resolve_timeout
        self.endpoint = endpoint
        self.expected_owner = expected_owner
        self._rpc = RpcClient.connect(endpoint, timeout=timeout, wire=wire)
        self._rpc.metadata = fence_metadata(expected_owner) or None
        self._watch = OwnerWatch(lease)
        self._owns_lease = False  # True when made from a URL here: closed with the client

    def _follow(self) -> None:
        if (record := self._watch.take()) is not None:
            self._target(record.endpoint, record.instance_id)

    def _target(self, endpoint: str, owner: str) -> None:
        if endpoint != self.endpoint:
            self._rpc.close()
            self._rpc = RpcClient.connect(endpoint, timeout=self.timeout, wire=self.wire)
            self.endpoint = endpoint
        self.expected_owner = owner
        self._rpc.metadata = fence_metadata(owner) or None

    def resolve(self) -> LeaseRecord:
        """Read the owner and its endpoint from the lease store, waiting for one.

        Raises UNAVAILABLE if no owner holds the lease within ``resolve_timeout``.
        """
        if self.lease is None:
            raise ValueError("this client has no lease store to resolve the owner from")
        record = wait_for_owner(self.lease, self.resolve_timeout)
        self._target(record.endpoint, record.instance_id)
        return record

    def _call(
        self,
        method: UnaryUnary[Req, Res],
        request: Req,
        *,
        retry: bool = False,
        timeout: float | None = None,
    ) -> Res:
        backoff = Backoff(self.resolve_timeout) if retry and self.lease is not None else None
        while True:
            self._follow()
            try:
                return self._rpc.call(method, request, timeout=timeout)
            except RpcError as exc:
                if backoff is None or exc.code not in RETRY_CODES:
                    raise
                pause = backoff.next()
                if pause is None:
                    raise
            time.sleep(pause)
            self.resolve()

    def health(self, *, timeout: float | None = None) -> HealthStatus:
        """The unfenced probe: who serves the endpoint and whether it is ready."""
        return self._rpc.call(Runtime.Health, _HEALTH, timeout=timeout)

    def describe(
        self, request: OpenSessionRequest, *, retry: bool = False, timeout: float | None = None
    ) -> ModelInfo:
        """A model's capabilities (config ignored).

        ``retry=True`` marks the call safe to retry: on ABORTED or UNAVAILABLE
        the client re-resolves the owner from its lease store and tries again,
        until ``resolve_timeout``.
        """
        return self._call(Runtime.Describe, request, retry=retry, timeout=timeout)

    def open_session(
        self, request: OpenSessionRequest, *, retry: bool = False, timeout: float | None = None
    ) -> RemoteSession:
        """Open a session on the model named by ``request``; ``retry`` as for :meth:`describe`."""
        reply = self._call(Runtime.OpenSession, request, retry=retry, timeout=timeout)
        return RemoteSession(self, reply.handle, reply.info)

    def close(self) -> None:
        """Close the connection (open sessions stay until closed or idle)."""
        self._watch.close()
        self._rpc.close()
        if self._owns_lease and self.lease is not None:
            self.lease.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def dial_leader(
    endpoint: str | None = None,
    expected_owner: str | None = None,
    *,
    lease: LeaseStore | str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
    wire: str = "json",
) -> Client:
    """Connect to an owner's endpoint, fencing every call with ``expected_owner``.

    Leave out ``endpoint`` and ``expected_owner`` to read both from ``lease``
    (a :class:`~.lease.LeaseStore`, a lease file path or an
    ``etcd://HOST:PORT[,...]/PREFIX/NAME`` URL), waiting up to
    ``resolve_timeout`` seconds for an owner. ``timeout`` is the default
    deadline of each call; ``wire`` the wire of the calls (``"json"`` or ``"protobuf"``).
    """
    check(wire)  # refused before a lease store is opened
    store = None if lease is None else open_lease(lease)
    try:
        if endpoint is None or expected_owner is None:
            if store is None:
                raise ValueError(
                    "give endpoint and expected_owner, or a lease to resolve them from"
                )
            record = wait_for_owner(store, resolve_timeout)
            endpoint, expected_owner = record.endpoint, record.instance_id
    except BaseException:
        if store is not None and store is not lease:
            store.close()
        raise
    client = Client(
        endpoint,
        expected_owner,
        lease=store,
        timeout=timeout,
        resolve_timeout=resolve_timeout,
        wire=wire,
    )
    client._owns_lease = store is not lease
    return client


def wait_for_owner(store: LeaseStore, timeout: float) -> LeaseRecord:
    """The current lease record, polling until some owner holds it (UNAVAILABLE at ``timeout``)."""
    backoff = Backoff(timeout)
    while (record := current_owner(store)) is None:
        pause = backoff.next()
        if pause is None:
            raise no_owner(store, timeout)
        time.sleep(pause)
    return record
