"""Run a model daemon: a runtime :class:`Server` on ``grpc.aio``, with its owner loop.

:func:`running` starts one and stops it gracefully; :func:`serve` runs one
until cancelled. The embedded defaults: a lease file, the ``none`` backend
(chosen by the command line), 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import grpc
import grpc.aio

from ..encoding.wires import check
from ..health.declaration import HealthDeclaration
from ..options import DEFAULT_MAX_CONCURRENT_CALLS, compression_of, server_options
from ..reflection.service import add_reflection
from .adapter import DEFAULT_MAX_WORKERS
from .contract import Service
from .lease import LeaseError, LeaseStore
from .lease_url import open_lease
from .owner import DEFAULT_LEASE_TTL, Owner
from .server import Server
from .sessions import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_SESSIONS
from .wire import Runtime

__all__ = ["Serving", "gauges", "new_instance_id", "running", "serve"]

log = logging.getLogger("transport.runtime")

#: Seconds in-flight calls get to finish on a graceful shutdown.
DEFAULT_GRACE = 5.0

_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


def new_instance_id() -> str:
    """A fresh owner instance id: ``<host>-<pid>-<random>``."""
    host = "".join(c for c in socket.gethostname() if c.isascii() and c.isalnum()) or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def _endpoint(listen: str, port: int, advertise: str | None) -> str:
    if advertise:
        return advertise
    host = listen.rpartition(":")[0]
    # The lease file is read on this machine, so loopback reaches a wildcard listener.
    return f"{'127.0.0.1' if host in _WILDCARDS else host}:{port}"


#: The old name of :func:`~.lease_url.open_lease` (the owner story imports it).
lease_store = open_lease


@dataclass
class Serving:
    """A running daemon: where it listens, its runtime server and its owner loop."""

    endpoint: str
    server: Server
    grpc_server: grpc.aio.Server
    owner: Owner | None


@contextlib.asynccontextmanager
async def running(
    service: Service,
    listen: str = "127.0.0.1:0",
    *,
    instance_id: str | None = None,
    backend: str = "",
    lease: LeaseStore | str | os.PathLike[str] | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    advertise: str | None = None,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_workers: int = DEFAULT_MAX_WORKERS,
    grace: float = DEFAULT_GRACE,
    mount: Callable[[grpc.aio.Server, Server], None] | None = None,
    max_concurrent_calls: int | None = DEFAULT_MAX_CONCURRENT_CALLS,
    options: Sequence[tuple[str, Any]] = (),
    wire: str = "json",
    compression: grpc.Compression | str | None = None,
    interceptors: Sequence[Any] = (),
) -> AsyncIterator[Serving]:
    """Serve ``service`` on ``listen`` (``HOST:PORT``, port 0 for any) while the block runs.

    With a ``lease`` (a store, an ``etcd://`` URL or a lease file path) the daemon serves fenced
    calls only while it owns the lease, and waits as standby otherwise. Without
    one it serves as ``instance_id`` from the start; ``instance_id=""`` turns
    fencing off. A new id is drawn when ``instance_id`` is ``None``. On exit:
    in-flight calls get ``grace`` seconds, then sessions are closed and the
    lease is released. ``mount(grpc_server, server)`` runs before the server
    starts: mount more services there (reflection lists them, and describes
    ``grpc.health.v1.Health``), or subscribe to lease changes.

    At most ``max_concurrent_calls`` calls are served at once (``None``: no
    limit); more end RESOURCE_EXHAUSTED at once. The server has the library's
    protections (:func:`~transport.options.server_options`); ``options`` are
    grpc-core arguments that replace or add to them. ``wire`` is the default
    wire of calls that do not say theirs; ``compression`` (``"gzip"``)
    compresses what the daemon sends. ``interceptors`` (``async def``) wrap
    each call of ``transport.v1.Runtime`` that passes the fence
    (:mod:`transport.interceptors`).
    """
    if max_concurrent_calls is not None and max_concurrent_calls < 1:
        raise ValueError(f"max_concurrent_calls must be at least 1, not {max_concurrent_calls}")
    if instance_id is None:
        instance_id = new_instance_id()
    if lease is not None and not instance_id:
        raise ValueError("a leased daemon needs an instance id: fencing is what the lease is for")
    server = Server(
        service,
        instance_id,
        backend,
        max_sessions=max_sessions,
        idle_timeout=idle_timeout,
        max_workers=max_workers,
    )
    grpc_server = grpc.aio.server(
        options=server_options(extra=options),
        maximum_concurrent_rpcs=max_concurrent_calls,
        compression=compression_of(compression),
    )
    server.binding.wire = check(wire)
    if interceptors:
        server.binding.interceptors = interceptors
    server.register(grpc_server)
    port = grpc_server.add_insecure_port(listen)
    if not port:
        raise OSError(f"cannot listen on {listen}")
    endpoint = _endpoint(listen, port, advertise)
    owner = None
    if lease is not None:
        server.fence.lapse()  # a standby until the lease is acquired
        owner = Owner(
            open_lease(lease),
            server.fence,
            endpoint,
            ttl=lease_ttl,
            on_lost=lambda record: server.drop_sessions(),
        )
    mounted = _mount(mount, grpc_server, server) if mount is not None else []
    # Reflection lists what the daemon serves: Runtime, and what mount added.
    declared = [_DECLARED[name] for name in mounted if name in _DECLARED]
    listed = [name for name in mounted if name not in _DECLARED]
    add_reflection(grpc_server, Runtime, *declared, listed=listed)
    await grpc_server.start()
    # A plain task, not a task group: the caller may exit several daemons in any
    # order (an AsyncExitStack), which nested cancel scopes would not allow.
    driving = asyncio.get_running_loop().create_task(owner.run()) if owner else None
    try:
        yield Serving(endpoint, server, grpc_server, owner)
    finally:
        # Still the owner during the grace period: in-flight calls may finish.
        await grpc_server.stop(grace)
        if owner is not None and driving is not None:
            owner.stop()
            try:
                await driving
            except Exception:  # the fence lapsed on its own clock meanwhile
                log.exception("the owner loop of %s failed", owner.instance_id)
        await server.close()
        if owner is not None:
            try:
                await anyio.to_thread.run_sync(owner.release)
            except LeaseError as exc:
                log.warning("could not release the lease: %s", exc)
            if owner.store is not lease:
                owner.store.close()


def gauges(serving: Serving) -> dict[str, tuple[str, Callable[[], float]]]:
    """The daemon's own gauges, read when scraped: ``name: (help, read)``.

    Sessions open, whether it holds its lease, the lease's term (0 while it
    holds none, or without a lease) and the seconds left before the lease may
    lapse (``+Inf`` for a daemon served without a lease).
    """
    server, owner = serving.server, serving.owner

    def term() -> float:
        record = owner.record if owner is not None else None
        return float(record.term) if record is not None else 0.0

    return {
        "transport_runtime_sessions_open": ("Sessions open.", lambda: float(server.session_count)),
        "transport_runtime_holds_lease": (
            "1 while fenced calls are served (the lease is held), else 0.",
            lambda: float(server.holds_lease),
        ),
        "transport_runtime_owner_term": ("Term of the lease held (0: none).", term),
        "transport_runtime_lease_seconds_left": (
            "Seconds until the lease may lapse (+Inf without a lease).",
            server.fence.time_left,
        ),
    }


#: Services a ``mount`` may add whose declaration reflection can describe.
_DECLARED: dict[str, type[object]] = {HealthDeclaration.service_name(): HealthDeclaration}


def _mount(
    mount: Callable[[grpc.aio.Server, Server], None], grpc_server: grpc.aio.Server, server: Server
) -> list[str]:
    """Run ``mount``; return the full names of the services it added to ``grpc_server``."""
    names: list[str] = []
    add = grpc_server.add_generic_rpc_handlers

    def recording(handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        names.extend(h.service_name() for h in handlers if isinstance(h, grpc.ServiceRpcHandler))
        add(handlers)

    # grpcio lists no services of a server: watch what mount hands it instead.
    setattr(grpc_server, "add_generic_rpc_handlers", recording)  # noqa: B010 (mypy: a method)
    try:
        mount(grpc_server, server)
    finally:
        delattr(grpc_server, "add_generic_rpc_handlers")
    return names


async def serve(
    service: Service,
    listen: str = "127.0.0.1:0",
    *,
    on_listening: Callable[[Serving], None] | None = None,
    **options: Any,
) -> None:
    """Run a daemon until cancelled (options as for :func:`running`), then stop gracefully."""
    async with running(service, listen, **options) as serving:
        if on_listening is not None:
            on_listening(serving)
        await anyio.sleep_forever()
