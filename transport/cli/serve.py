"""``python -m transport serve`` and ``health --runtime``: the owner daemon and its own probe."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from typing import Any

import grpc.aio

from .. import metrics
from .._signals import add_stop_handlers
from ..client.sync import Client as RpcClient
from ..encoding.json_codec import JsonCodec
from ..encoding.wires import add_arguments as add_wire_arguments
from ..errors import RpcError
from ..health.service import Health
from ..options import DEFAULT_MAX_CONCURRENT_CALLS
from ..runtime.backend_none import NoneBackend
from ..runtime.contract import HealthStatus, Service
from ..runtime.daemon import Serving, gauges, running
from ..runtime.etcd import EtcdError
from ..runtime.lease import LeaseError, LeaseStore
from ..runtime.lease_url import open_lease
from ..runtime.owner import DEFAULT_LEASE_TTL
from ..runtime.server import Server
from ..runtime.sessions import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_SESSIONS
from ..runtime.wire import HealthRequest, Runtime

__all__ = ["add_commands", "load_backend"]

#: Exit status of ``health`` when the daemon answers but is not ready.
NOT_READY = 1
#: Exit status of ``health`` when nothing answers (or no owner holds the lease).
UNREACHABLE = 2
#: Exit status of ``serve`` when it cannot lock or write its lease file.
UNUSABLE_LEASE = 3

_health_codec = JsonCodec(HealthStatus)


def load_backend(name: str) -> Service:
    """The backend called ``name``: ``none``, or ``module:factory`` for your own."""
    if name == "none":
        return NoneBackend()
    module, _, attribute = name.partition(":")
    if not attribute:
        raise SystemExit(f"unknown backend {name!r}: use 'none' or 'package.module:factory'")
    factory: Any = getattr(importlib.import_module(module), attribute)
    backend: Service = factory() if callable(factory) else factory
    if not all(callable(getattr(backend, name, None)) for name in ("describe", "open_session")):
        raise SystemExit(
            f"{name} is not an owner-runtime backend (it has no describe/open_session); to serve "
            f"your own service, bind it and run: python -m transport run {module}:BINDINGS"
        )
    return backend


def add_commands(commands: Any) -> None:
    """Add ``serve`` to the subcommands of ``python -m transport``."""
    serve = commands.add_parser("serve", help="run a model daemon that owns a lease")
    serve.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any)")
    serve.add_argument(
        "--lease",
        help="the lease file, or etcd://HOST:PORT[,HOST:PORT...]/PREFIX/NAME; without it, "
        "serve as the instance now",
    )
    serve.add_argument(
        "--wait-for-etcd",
        action="store_true",
        help="with an etcd lease: wait for etcd at start instead of exiting when unreachable",
    )
    serve.add_argument(
        "--lease-ttl", type=float, default=DEFAULT_LEASE_TTL, help="lease lifetime in seconds"
    )
    serve.add_argument("--instance-id", help="owner instance id (default: a new one; '' unfenced)")
    serve.add_argument("--backend", default="none", help="'none' or package.module:factory")
    serve.add_argument("--advertise", help="endpoint written to the lease (default: listen)")
    serve.add_argument("--max-sessions", type=int, default=DEFAULT_MAX_SESSIONS)
    serve.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    serve.add_argument(
        "--max-concurrent-calls",
        type=_concurrent_calls,
        default=DEFAULT_MAX_CONCURRENT_CALLS,
        help="calls served at once; more end RESOURCE_EXHAUSTED (0: no limit)",
    )
    serve.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (needs the metrics extra)",
    )
    serve.add_argument("--metrics-host", default="127.0.0.1", help="of --metrics-port (127.0.0.1)")
    add_wire_arguments(serve)
    serve.set_defaults(run=run_serve)
    # ``health`` is cli.health's: grpc.health.v1, or run_health here with --runtime.


def _concurrent_calls(text: str) -> int | None:
    count = int(text)
    if count < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return count or None


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM, then shut down gracefully."""
    if args.metrics_port is not None:
        problem = (
            f"--metrics-port {args.metrics_port} is not a port (0 picks a free one)"
            if not 0 <= args.metrics_port <= 65535
            else ""
            if metrics.available()
            else metrics.MISSING
        )
        if problem:
            print(f"serve: {problem}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    store = None
    try:
        if args.lease is not None:
            store = open_lease(args.lease)  # the one store, from the URL read once
            store.check(wait=args.wait_for_etcd)
    except (ValueError, LeaseError) as exc:
        print(f"serve: {exc}", file=sys.stderr)
        if store is not None:
            store.close()
        # A lease file this process cannot write is unusable; a bad URL or etcd, unreachable.
        return UNREACHABLE if isinstance(exc, (ValueError, EtcdError)) else UNUSABLE_LEASE
    try:
        return asyncio.run(_serve(args, store))
    finally:
        if store is not None:
            store.close()


def _serve_metrics(args: argparse.Namespace, serving: Serving) -> str:
    """Serve ``/metrics`` with the daemon's gauges; where it listens (``HOST:PORT``)."""
    metrics.add_gauges(gauges(serving))
    host, port = metrics.serve_metrics(args.metrics_port, args.metrics_host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve(args: argparse.Namespace, store: LeaseStore | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    add_stop_handlers(loop, stop.set)
    async with running(
        load_backend(args.backend),
        args.listen,
        instance_id=args.instance_id,
        backend=args.backend,
        lease=store,
        lease_ttl=args.lease_ttl,
        advertise=args.advertise,
        max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout,
        max_concurrent_calls=args.max_concurrent_calls,
        mount=mount_health,
        wire=args.wire,
        compression=args.compression,
        interceptors=[metrics.async_server_interceptor()] if args.metrics_port is not None else (),
    ) as serving:
        _say(f"listening on {serving.endpoint}")
        if args.metrics_port is not None:
            try:
                metrics_at = _serve_metrics(args, serving)
            except OSError as exc:
                print(f"serve: cannot serve metrics: {exc}", file=sys.stderr)
                return 1
            _say(f"metrics on {metrics_at}")
        fencing = (
            f"instance {serving.server.instance_id}" if serving.server.instance_id else "unfenced"
        )
        _say(f"{fencing}, backend {args.backend}, lease {args.lease or '-'}")
        if serving.owner is not None:
            _say("standby: waiting for the lease")
            serving.server.subscribe(lambda holding: _report(serving, holding))
        await stop.wait()
    _say("stopped")
    return 0


def mount_health(grpc_server: grpc.aio.Server, server: Server) -> None:
    """Mount ``grpc.health.v1``, SERVING only while the daemon holds its lease (for probes)."""
    probe = Health()
    probe.add_to(grpc_server)
    probe.follow(server)


def _report(serving: Serving, holding: bool) -> None:
    record = serving.owner.record if serving.owner is not None else None
    if holding and record is not None:
        _say(f"owner: serving, term {record.term}")
    elif not holding:
        _say("not serving: the lease was released, lapsed or lost")


def _say(line: str) -> None:
    print(line, flush=True)


def run_health(args: argparse.Namespace) -> int:
    """Print the daemon's HealthStatus as JSON; exit 0 if ready, 1 if not, 2 if unreachable."""
    owner = None
    endpoint = args.endpoint
    if args.lease is not None:
        try:
            store = open_lease(args.lease)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return UNREACHABLE
        try:
            record = store.read()
        except LeaseError as exc:
            print(exc, file=sys.stderr)
            return UNREACHABLE
        finally:
            store.close()
        if record is None:
            print(f"no owner holds the lease {args.lease}", file=sys.stderr)
            return UNREACHABLE
        endpoint, owner = record.endpoint, record.instance_id
    with RpcClient.connect(endpoint, timeout=args.timeout) as client:
        try:
            status = client.call(Runtime.Health, HealthRequest())
        except RpcError as exc:
            print(f"{endpoint}: {exc}", file=sys.stderr)
            return UNREACHABLE
    print(_health_codec.encode(status).decode())
    if owner is not None and status.instance_id != owner:
        print(f"{endpoint} is served by {status.instance_id}, not {owner}", file=sys.stderr)
        return NOT_READY
    return 0 if status.ready else NOT_READY
