"""``python -m transport.interop``: the interop server and client over JSON.

``server --port PORT [--asyncio]`` serves ``grpc.testing.TestService`` (and the
standard health service) on 127.0.0.1 and prints ``listening on
127.0.0.1:<port>`` first; SIGTERM or Ctrl-C stop it gracefully.
``client --server_host HOST --server_port PORT --test_case NAME|all`` runs
cases against any server, prints one line per case and ``N passed, M failed``,
and exits 0 only when every case passed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from concurrent import futures

import grpc
import grpc.aio

from .._signals import StopSignals, add_stop_handlers
from ..client.aio import AsyncClient
from ..health.service import Health
from ..options import server_options
from ..server import bind
from .cases import CASES, CaseResult, run_cases
from .server import AsyncTestServiceServer, TestServiceServer
from .service import TestService

#: Seconds that calls in flight get to finish when the server is asked to stop.
SHUTDOWN_GRACE = 5.0


def _listening(host: str, port: int) -> None:
    if not port:
        raise SystemExit(f"could not listen on {host}")
    print(f"listening on {host}:{port}", flush=True)


def _serve_sync(host: str, port: int) -> None:
    health = Health()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        options=server_options(),
        interceptors=[health.interceptor()],
    )
    bind(TestService, TestServiceServer()).add_to(server)
    health.add_to(server)
    bound = server.add_insecure_port(f"{host}:{port}")
    with StopSignals() as stop:
        server.start()
        _listening(host, bound)
        stop.wait()
    health.enter_graceful_shutdown()
    server.stop(grace=SHUTDOWN_GRACE).wait()


async def _serve_async(host: str, port: int) -> None:
    health = Health()
    server = grpc.aio.server(options=server_options(), interceptors=[health.async_interceptor()])
    bind(TestService, AsyncTestServiceServer()).add_to(server)
    health.add_to(server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    _listening(host, bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    add_stop_handlers(loop, stop.set)
    await stop.wait()
    health.enter_graceful_shutdown()
    await server.stop(grace=SHUTDOWN_GRACE)


async def _run_client(host: str, port: int, names: list[str], time_limit: float) -> int:
    def report(result: CaseResult) -> None:
        print(result, flush=True)

    async with AsyncClient.connect(f"{host}:{port}", timeout=time_limit) as client:
        results = await run_cases(client, names, report=report, time_limit=time_limit)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the server or the client; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m transport.interop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("server", help="serve grpc.testing.TestService")
    serve.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--asyncio", action="store_true", help="serve on grpc.aio.server")
    client = commands.add_parser("client", help="run interop test cases against a server")
    client.add_argument("--server_host", default="127.0.0.1")
    client.add_argument("--server_port", type=int, required=True)
    client.add_argument(
        "--test_case",
        default="all",
        help=f"a case, a comma-separated list, or 'all' ({', '.join(CASES)})",
    )
    client.add_argument("--time_limit", type=float, default=30.0, help="seconds per case")
    args = parser.parse_args(argv)
    if args.command == "server":
        if args.asyncio:
            asyncio.run(_serve_async(args.host, args.port))
        else:
            _serve_sync(args.host, args.port)
        return 0
    names = list(CASES) if args.test_case == "all" else args.test_case.split(",")
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown test case(s): {', '.join(unknown)}")
    return asyncio.run(_run_client(args.server_host, args.server_port, names, args.time_limit))


if __name__ == "__main__":
    sys.exit(main())
