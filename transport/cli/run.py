"""``python -m transport run MODULE:ATTR``: serve your bound services, as uvicorn serves an app.

``ATTR`` names a :class:`~transport.Binding`, a list of them, or a function
of no arguments that returns either. The server is ``grpc.server`` for ``def``
implementations and ``grpc.aio.server`` for ``async def`` ones, with the
standard health service mounted (SERVING for the server and each service). It
prints ``listening on HOST:PORT`` once it serves; SIGTERM or SIGINT drains it:
health turns NOT_SERVING, new calls are refused UNAVAILABLE (clients retry
elsewhere) and the server stops once the calls in flight are done, or after
``--grace`` seconds, when the process exits at once, leaving any handler
still running behind. ``--workers N`` runs N processes on one port
(SO_REUSEPORT: the kernel spreads connections over them), which is how
grpcio scales a Python server over cores. ``--interceptor MODULE:ATTR``
(repeatable) wraps every call of the bindings in an interceptor that sees
its decoded messages (:mod:`transport.interceptors`). ``--metrics-port PORT``
serves Prometheus metrics of every call on ``/metrics`` (:mod:`transport.metrics`;
one process only: not with ``--workers``) and ``--access-log`` prints one line
per call (:mod:`transport.access_log`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from concurrent import futures
from typing import Any

import grpc
import grpc.aio

from .. import access_log, metrics
from .._signals import StopSignals, add_stop_handlers
from ..encoding import wires as _wires
from ..errors import DeclarationError
from ..health.declaration import HealthDeclaration
from ..health.service import Health, ServingStatus
from ..options import compression_of, grpc_options
from ..reflection.service import add_reflection
from ..security import server_credentials
from ..server import Binding
from . import address
from .drain import InFlight
from .workers import run_workers

__all__ = ["add_command", "load_bindings", "load_interceptor", "mount_extras"]

#: Default seconds that calls in flight get to finish after SIGTERM.
DEFAULT_GRACE = 5.0
# Once no handler runs, the last replies still have to reach their clients;
# past the grace period (handlers still running), the server cancels them at once.
_FLUSH = 1.0


def add_command(commands: Any) -> None:
    """Add ``run`` to the subcommands of ``python -m transport``."""
    run = commands.add_parser(
        "run",
        help="serve your bound service(s): python -m transport run MODULE:ATTR",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("target", metavar="MODULE:ATTR", help="e.g. myapp.server:bindings")
    run.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1; 0.0.0.0: all")
    run.add_argument("--port", type=int, default=50051, help="default 50051; 0 picks a free port")
    run.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    run.add_argument("--threads", type=int, default=32, help="handler threads (def services)")
    run.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        help="seconds calls in flight get after SIGTERM (5)",
    )
    run.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    run.add_argument("--tls-key", help="PEM private key of --tls-cert")
    run.add_argument("--client-ca", help="PEM CA that client certificates must chain to (mTLS)")
    run.add_argument(
        "--interceptor",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="wrap every call of the bindings (repeatable, outermost first): an interceptor "
        "(transport.interceptors) or a function of no arguments returning one",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (needs the metrics extra)",
    )
    run.add_argument("--metrics-host", default="127.0.0.1", help="of --metrics-port (127.0.0.1)")
    run.add_argument(
        "--access-log", action="store_true", help="print a line per call (logger transport.access)"
    )
    run.add_argument(
        "--access-log-format", choices=access_log.FORMATS, default="text", help="text or json"
    )
    _wires.add_arguments(run)
    # Set for the worker processes of --workers: share the port with the others.
    run.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(run=run_command)


def _imported(target: str) -> Any:
    """The object ``MODULE:ATTR`` names; ``ValueError`` if there is none."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{target!r} is not MODULE:ATTR (e.g. myapp.server:bindings)")
    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ValueError(
                f"no module named {exc.name!r} (run from the directory that holds it, or set "
                "PYTHONPATH)"
            ) from None
        raise
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attribute!r}") from None
    return found


def load_bindings(target: str) -> list[Binding]:
    """Import ``MODULE:ATTR`` and return the bindings it names; raise ``ValueError`` if unusable."""
    found = _imported(target)
    if callable(found) and not isinstance(found, Binding):
        if inspect.iscoroutinefunction(found):
            raise ValueError(f"{target} is an async function: return the bindings from a def")
        found = found()
    bindings = [found] if isinstance(found, Binding) else found
    if (
        not isinstance(bindings, (list, tuple))
        or not bindings
        or not all(isinstance(binding, Binding) for binding in bindings)
    ):
        raise ValueError(
            f"{target} must be a Binding (bind(Service, implementation)), a list of them, or a "
            f"function of no arguments returning either; got {type(found).__name__}"
        )
    kinds = {binding.asynchronous for binding in bindings}
    if len(kinds) > 1:
        raise ValueError(
            f"{target} mixes async and sync implementations: one server is either grpc.server "
            "(def) or grpc.aio.server (async def)"
        )
    return list(bindings)


def load_interceptor(target: str) -> Any:
    """The interceptor ``MODULE:ATTR`` names: an object with ``intercept``, or a factory of one."""
    found = _imported(target)
    if isinstance(found, type) or not hasattr(found, "intercept"):
        if not callable(found) or inspect.iscoroutinefunction(found):
            raise ValueError(
                f"{target} must be an interceptor (an object with intercept(call, request, "
                f"proceed)) or a def of no arguments returning one; got {type(found).__name__}"
            )
        found = found()
    if not callable(getattr(found, "intercept", None)):
        raise ValueError(
            f"{target} returned {type(found).__name__}, which has no intercept(call, request, "
            "proceed) method"
        )
    return found


def mount_extras(server: grpc.Server | grpc.aio.Server, bindings: Sequence[Binding]) -> None:
    """Mount what ``run`` serves besides the bindings and health.

    Server reflection (``grpc.reflection.v1`` and ``v1alpha``) of the bindings and health.
    """
    add_reflection(server, *bindings, HealthDeclaration)


def run_command(args: argparse.Namespace) -> int:
    """Serve as the arguments say until SIGINT or SIGTERM; return the exit status."""
    problem = _invalid(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.workers > 1:
        return run_workers(args)
    try:
        bindings = load_bindings(args.target)
        interceptors = [load_interceptor(target) for target in args.interceptor]
        if bindings:  # outermost: they see what the user's interceptors refuse
            interceptors = [*_observing(args, bindings[0].asynchronous), *interceptors]
        for binding in bindings:
            binding.wire = args.wire  # refused for a JSON-only service
            if interceptors:  # refused when def/async def differs from the binding's
                binding.interceptors = (*binding.interceptors, *interceptors)
        credentials = _credentials(args)
    except (ValueError, OSError, DeclarationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception:  # the user's module failed to import: its traceback is what helps
        traceback.print_exc()
        return 1
    if bindings[0].asynchronous:
        return asyncio.run(_serve_async(args, bindings, credentials))
    return _serve_sync(args, bindings, credentials)


def _invalid(args: argparse.Namespace) -> str:
    if not 0 <= args.port <= 65535:
        return f"--port {args.port} is not a port (0 picks a free one)"
    if args.workers < 1 or args.threads < 1:
        return "--workers and --threads must be at least 1"
    if args.grace < 0:
        return "--grace must not be negative"
    if (args.tls_cert is None) != (args.tls_key is None):
        return "TLS needs both --tls-cert and --tls-key"
    if args.client_ca is not None and args.tls_cert is None:
        return "--client-ca needs --tls-cert and --tls-key"
    if args.metrics_port is not None:
        if not 0 <= args.metrics_port <= 65535:
            return f"--metrics-port {args.metrics_port} is not a port (0 picks a free one)"
        if args.workers > 1:
            return (
                "--metrics-port counts the calls of one process: use --workers 1, or run one "
                "server per core, each with its own --metrics-port"
            )
        if not metrics.available():
            return metrics.MISSING
    return ""


def _observing(args: argparse.Namespace, asynchronous: bool) -> list[Any]:
    """The metrics and access-log interceptors the arguments ask for."""
    found = []
    if args.metrics_port is not None:
        make = metrics.async_server_interceptor if asynchronous else metrics.server_interceptor
        found.append(make())
    if args.access_log:
        access_log.log_to(sys.stdout)
        log = access_log.async_server_interceptor if asynchronous else access_log.server_interceptor
        found.append(log(args.access_log_format))
    return found


def _serve_metrics(args: argparse.Namespace) -> str:
    """Start serving ``/metrics`` if asked; the line to print once the server listens."""
    if args.metrics_port is None:
        return ""
    try:
        host, port = metrics.serve_metrics(args.metrics_port, args.metrics_host)
    except OSError as exc:
        where = address(args.metrics_host, args.metrics_port)
        raise OSError(f"--metrics-port: cannot listen on {where}: {exc.strerror or exc}") from None
    return f"metrics on {address(host, port)}"


def _credentials(args: argparse.Namespace) -> grpc.ServerCredentials | None:
    if args.tls_cert is None:
        return None
    return server_credentials(args.tls_cert, args.tls_key, client_ca=args.client_ca)


def _options(args: argparse.Namespace) -> list[tuple[str, Any]]:
    # grpcio sets SO_REUSEPORT by default on Linux, which would let a second
    # server start on a port in use; only the workers of one `run` share it.
    return grpc_options(extra=[("grpc.so_reuseport", 1 if args.reuse_port else 0)])


def _prepare(
    server: grpc.Server | grpc.aio.Server,
    bindings: Sequence[Binding],
    args: argparse.Namespace,
    credentials: grpc.ServerCredentials | None,
    health: Health,
) -> int:
    for binding in bindings:
        binding.add_to(server)
        health.set(binding.service.service_name(), ServingStatus.SERVING)
    health.add_to(server)
    mount_extras(server, bindings)
    listen = address(args.host, args.port)
    port: int = (
        server.add_insecure_port(listen)
        if credentials is None
        else server.add_secure_port(listen, credentials)
    )
    if not port:
        raise OSError(f"cannot listen on {listen}")
    return port


def _serve_sync(
    args: argparse.Namespace,
    bindings: Sequence[Binding],
    credentials: grpc.ServerCredentials | None,
) -> int:
    health, in_flight = Health(), InFlight()
    executor = futures.ThreadPoolExecutor(max_workers=args.threads)
    server = grpc.server(
        executor,
        options=_options(args),
        interceptors=[health.interceptor(), in_flight.interceptor()],
        compression=compression_of(args.compression),
    )
    try:
        port = _prepare(server, bindings, args, credentials, health)
        metrics_line = _serve_metrics(args)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with StopSignals() as stop:
        server.start()
        print(f"listening on {address(args.host, port)}", flush=True)
        if metrics_line:
            print(metrics_line, flush=True)
        stop.wait()
    health.enter_graceful_shutdown()  # new calls UNAVAILABLE from now on
    idle = in_flight.wait_idle(args.grace)
    server.stop(grace=_FLUSH if idle else None).wait()
    executor.shutdown(wait=False, cancel_futures=True)
    if not idle:
        _abandon()
    return 0


async def _serve_async(
    args: argparse.Namespace,
    bindings: Sequence[Binding],
    credentials: grpc.ServerCredentials | None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    add_stop_handlers(loop, stop.set)
    health, in_flight = Health(), InFlight()
    server = grpc.aio.server(
        options=_options(args),
        interceptors=[health.async_interceptor(), in_flight.async_interceptor()],
        compression=compression_of(args.compression),
    )
    try:
        port = _prepare(server, bindings, args, credentials, health)
        metrics_line = _serve_metrics(args)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    await server.start()
    print(f"listening on {address(args.host, port)}", flush=True)
    if metrics_line:
        print(metrics_line, flush=True)
    await stop.wait()
    health.enter_graceful_shutdown()
    idle = await in_flight.wait_idle_async(args.grace)
    await server.stop(_FLUSH if idle else None)
    if not idle:
        _abandon()
    return 0


def _abandon() -> None:
    """Exit now, past the grace period, leaving the handlers that still run behind.

    The server has cancelled their calls, but a ``def`` handler blocked in a
    sleep or a read keeps its thread (which the interpreter would wait for at
    exit), and grpc's asyncio server prints the ``CancelledError`` of each
    cancelled handler task as the event loop closes: neither is worth the wait
    nor the noise once the grace is over.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)
