"""``python -m transport health HOST:PORT``: the standard ``grpc.health.v1`` probe.

It asks any gRPC server (this library's or another's) for the status of a
service and exits as ``grpc_health_probe`` does, so it drops into the same
Kubernetes exec probes and scripts::

    0  SERVING                      3  the Check call failed (no health service, say)
    1  invalid arguments            4  answered, but not SERVING
    2  could not connect: refused at once, or no answer within --connect-timeout

A refused connection (nothing listening) is reported at once; ``--wait`` keeps
trying until ``--connect-timeout`` instead, for a server still starting.

The owner runtime's own probe (readiness, instance id and backend as JSON) is
``health --runtime HOST:PORT`` or ``health --lease PATH``.
"""

from __future__ import annotations

import argparse
import queue
import sys
import time
from typing import Any

import grpc

from ..errors import RpcError
from ..health.service import HEALTH_SERVICE, check
from ..health.wire import ServingStatus
from ..security import channel_credentials
from ..status import StatusCode
from .serve import run_health as run_runtime_health

__all__ = [
    "CONNECTION_FAILURE",
    "INVALID_ARGUMENTS",
    "RPC_FAILURE",
    "SERVING",
    "UNHEALTHY",
    "add_command",
    "probe",
    "usage_status",
]

#: Exit statuses, as grpc_health_probe documents them.
SERVING = 0
INVALID_ARGUMENTS = 1
CONNECTION_FAILURE = 2
RPC_FAILURE = 3
UNHEALTHY = 4


def add_command(commands: Any) -> None:
    """Add ``health`` to the subcommands of ``python -m transport``."""
    health = commands.add_parser(
        "health",
        help="probe a server's grpc.health.v1 (grpc_health_probe's exit codes)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = health.add_mutually_exclusive_group(required=True)
    target.add_argument("endpoint", nargs="?", help="HOST:PORT of the server")
    target.add_argument(
        "--lease", help="runtime probe of the owner in this lease (file or etcd:// URL)"
    )
    health.add_argument("--service", default="", help="the service to check ('': the server)")
    health.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to connect")
    health.add_argument("--rpc-timeout", type=float, default=5.0, help="seconds for the call")
    health.add_argument(
        "--wait",
        action="store_true",
        help="keep trying to connect until --connect-timeout (default: a refusal ends the probe)",
    )
    health.add_argument(
        "--runtime", action="store_true", help="the owner runtime's probe (JSON; exit 0/1/2)"
    )
    health.add_argument("--timeout", type=float, default=5.0, help="with --runtime: seconds")
    health.add_argument("--tls", action="store_true", help="connect with TLS")
    health.add_argument("--tls-ca-cert", help="PEM of the CA to trust (default: system roots)")
    health.add_argument("--tls-client-cert", help="PEM of a client certificate (mutual TLS)")
    health.add_argument("--tls-client-key", help="PEM of the client certificate's key")
    health.add_argument("--tls-server-name", help="the name to verify the certificate against")
    health.set_defaults(run=run_health)


def usage_status(argv: list[str] | None, status: int | str | None) -> int | str | None:
    """The exit status of a command line argparse refused: 1 for ``health``, as the probe's."""
    words = sys.argv[1:] if argv is None else argv
    first = next((word for word in words if not word.startswith("-")), None)
    return INVALID_ARGUMENTS if first == "health" and status == 2 else status


def run_health(args: argparse.Namespace) -> int:
    """Probe as the arguments say; return the exit status."""
    if args.runtime or args.lease is not None:
        return run_runtime_health(args)
    problem = _invalid(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return INVALID_ARGUMENTS
    try:
        credentials = _credentials(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return INVALID_ARGUMENTS
    return probe(
        args.endpoint,
        args.service,
        connect_timeout=args.connect_timeout,
        rpc_timeout=args.rpc_timeout,
        credentials=credentials,
        server_name=args.tls_server_name,
        wait=args.wait,
    )


def _invalid(args: argparse.Namespace) -> str:
    host, _, port = args.endpoint.rpartition(":")
    if not host or not port.isdigit():
        return f"{args.endpoint!r} is not HOST:PORT"
    if args.connect_timeout <= 0 or args.rpc_timeout <= 0:
        return "timeouts must be positive"
    tls_only = (args.tls_ca_cert, args.tls_client_cert, args.tls_client_key, args.tls_server_name)
    if not args.tls and any(value is not None for value in tls_only):
        return "the --tls-* flags need --tls"
    return ""


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if not args.tls:
        return None
    return channel_credentials(
        args.tls_ca_cert,
        certificate_chain=args.tls_client_cert,
        private_key=args.tls_client_key,
    )


def probe(
    endpoint: str,
    service: str = "",
    *,
    connect_timeout: float = 5.0,
    rpc_timeout: float = 5.0,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
    wait: bool = False,
) -> int:
    """Check ``service`` at ``endpoint``, print the outcome, return the probe's exit status.

    A connection that fails (refused, a TLS handshake that fails) ends the
    probe at once, unless ``wait``: then it is retried until ``connect_timeout``.
    """
    options = [] if server_name is None else [("grpc.ssl_target_name_override", server_name)]
    channel = (
        grpc.insecure_channel(endpoint, options=options)
        if credentials is None
        else grpc.secure_channel(endpoint, credentials, options=options)
    )
    with channel:
        state = _connect(channel, connect_timeout, wait)
        if state is None:
            print(
                f"failed to connect service at {endpoint!r}: timed out after {connect_timeout:g} s",
                file=sys.stderr,
            )
            return CONNECTION_FAILURE
        try:
            # Not waiting for ready: on a failed connection the call fails at once, saying why.
            status = check(channel, service, timeout=rpc_timeout)
        except RpcError as exc:
            if state is not grpc.ChannelConnectivity.READY and exc.code is StatusCode.UNAVAILABLE:
                # grpc's last words: "...: Connection refused", "...: Domain name not found]"
                why = exc.message.rpartition(": ")[2].strip(" ].") or "the connection failed"
                print(
                    f"failed to connect service at {endpoint!r}: {why} "
                    "(--wait keeps trying until --connect-timeout)",
                    file=sys.stderr,
                )
                return CONNECTION_FAILURE
            print(_rpc_failure(exc, service), file=sys.stderr)
            return RPC_FAILURE
        except ValueError as exc:  # an answer that is not a HealthCheckResponse
            print(f"health rpc failed: malformed response: {exc}", file=sys.stderr)
            return RPC_FAILURE
    if status is not ServingStatus.SERVING:
        print(f"service unhealthy (responded with {status.name!r})", file=sys.stderr)
        return UNHEALTHY
    print(f"status: {status.name}", flush=True)
    return SERVING


def _connect(channel: grpc.Channel, timeout: float, wait: bool) -> grpc.ChannelConnectivity | None:
    """READY, or TRANSIENT_FAILURE once a connection failed (unless ``wait``); None: timed out."""
    states: queue.SimpleQueue[grpc.ChannelConnectivity] = queue.SimpleQueue()
    watch = states.put
    channel.subscribe(watch, try_to_connect=True)
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                state = states.get(timeout=left)
            except queue.Empty:
                break
            if state is grpc.ChannelConnectivity.READY:
                return state
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE and not wait:
                return state
        return None
    finally:
        channel.unsubscribe(watch)


def _rpc_failure(exc: RpcError, service: str) -> str:
    code, details = exc.code, exc.message
    if code is StatusCode.UNIMPLEMENTED:
        return (
            f"error: this server does not implement the grpc health protocol ({HEALTH_SERVICE}); "
            "mount transport.health.service.Health on it"
        )
    if code is StatusCode.NOT_FOUND:
        return f"error: the server does not know the service {service!r}: {details}"
    return f"health rpc failed: {code.name}: {details}"
