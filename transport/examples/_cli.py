"""The command line shared by the examples: ``serve`` until a signal, ``demo`` a client."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager

import grpc

from transport import Binding, server_options
from transport._signals import StopSignals
from transport.encoding.wires import add_arguments as add_wire_options
from transport.options import compression_of
from transport.reflection.service import add_reflection


@contextmanager
def running(
    bindings: Sequence[Binding],
    port: int = 0,
    *,
    max_workers: int = 16,
    wire: str | None = None,
    compression: str | None = None,
) -> Iterator[int]:
    """Serve ``bindings`` on ``grpc.server`` at 127.0.0.1:``port``; yield the bound port.

    ``wire`` sets the bindings' default wire, ``compression`` what the server sends.
    """
    executor = futures.ThreadPoolExecutor(max_workers=max_workers)
    server = grpc.server(
        executor, options=server_options(), compression=compression_of(compression)
    )
    for binding in bindings:
        if wire is not None:
            binding.wire = wire
        binding.add_to(server)
    add_reflection(server, *bindings)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if not bound:
        raise OSError(f"could not listen on 127.0.0.1:{port}")
    server.start()
    try:
        yield bound
    finally:
        # Cancels the calls in flight, which wakes every handler waiting on its context.
        server.stop(grace=None).wait(timeout=10)
        executor.shutdown(wait=False, cancel_futures=True)


def serve_until_signalled(
    bindings: Sequence[Binding],
    port: int,
    *,
    wire: str | None = None,
    compression: str | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, after printing ``listening on 127.0.0.1:<port>``."""
    serving = running(bindings, port, wire=wire, compression=compression)
    with StopSignals() as stop, serving as bound:
        print(f"listening on 127.0.0.1:{bound}", flush=True)
        stop.wait()


def parser(
    description: str,
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """A parser with ``serve --port`` and ``demo [--target]``: the root and the two commands."""
    root = argparse.ArgumentParser(description=description)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve on 127.0.0.1 until SIGINT/SIGTERM")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    add_wire_options(serve)
    demo = commands.add_parser("demo", help="call a server with the typed client")
    demo.add_argument("--target", help="HOST:PORT of a running server (default: start one)")
    return root, serve, demo


def demo_against(
    target: str | None, bindings: Callable[[], Sequence[Binding]], call: Callable[[str], None]
) -> None:
    """Run ``call(address)`` against ``target``, or against a server started for the demo."""
    if target is not None:
        call(target)
        return
    with running(bindings()) as port:
        call(f"127.0.0.1:{port}")
