"""``run --workers N``: N server processes on one port, the way grpcio scales Python over cores.

A Python server runs its handlers under one GIL, so one process uses about
one core. grpcio's answer is several processes that each bind the same port
with SO_REUSEPORT; the kernel spreads incoming connections over them. This
parent reserves the port (a socket bound with SO_REUSEPORT but never
listening, so it takes no connections and ``--port 0`` gives all workers the
same free port), starts the workers, prints ``listening on HOST:PORT`` once
every one of them listens, forwards SIGTERM/SIGINT to them and waits for
their drain. If a worker dies, the others are stopped too and the exit status
is 1: whatever supervises ``run`` (systemd, Kubernetes) restarts it whole.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import threading
from typing import IO

from .._signals import StopSignals
from . import address

__all__ = ["run_workers"]


def _reserve(host: str, port: int) -> socket.socket:
    family, kind, protocol, _, where = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    placeholder = socket.socket(family, kind, protocol)
    placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    placeholder.bind(where)
    return placeholder


def _worker_argv(args: argparse.Namespace, port: int) -> list[str]:
    argv = [sys.executable, "-m", "transport", "run", args.target, "--reuse-port"]
    argv += ["--host", args.host, "--port", str(port)]
    argv += ["--threads", str(args.threads), "--grace", str(args.grace), "--wire", args.wire]
    for flag, value in (
        ("--compression", args.compression),
        ("--tls-cert", args.tls_cert),
        ("--tls-key", args.tls_key),
        ("--client-ca", args.client_ca),
    ):
        if value is not None:
            argv += [flag, value]
    for interceptor in args.interceptor:
        argv += ["--interceptor", interceptor]
    if args.access_log:
        argv += ["--access-log", "--access-log-format", args.access_log_format]
    return argv


def _relay(stream: IO[str]) -> None:
    """Pass on what a worker prints after its first line."""
    for line in stream:
        sys.stdout.write(line)
        sys.stdout.flush()


def _watch(worker: subprocess.Popen[str], stop: StopSignals) -> None:
    """A worker that exits on its own stops the others."""
    worker.wait()
    stop.set()


def run_workers(args: argparse.Namespace) -> int:
    """Serve with ``args.workers`` processes until SIGINT or SIGTERM; return the exit status."""
    if not hasattr(socket, "SO_REUSEPORT"):
        print(
            "error: --workers needs SO_REUSEPORT (Linux, macOS, BSD), which this platform "
            "lacks: run one process per port instead",
            file=sys.stderr,
        )
        return 2
    try:
        placeholder = _reserve(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {address(args.host, args.port)}: {exc}", file=sys.stderr)
        return 1
    with StopSignals() as stop, placeholder:
        port = placeholder.getsockname()[1]
        workers = [
            subprocess.Popen(_worker_argv(args, port), stdout=subprocess.PIPE, text=True)
            for _ in range(args.workers)
        ]
        failed = False
        for worker in workers:
            assert worker.stdout is not None
            if not worker.stdout.readline().startswith("listening on "):
                failed = True  # it said why on stderr
                break
            threading.Thread(target=_relay, args=(worker.stdout,), daemon=True).start()
        if not failed:
            print(f"listening on {address(args.host, port)}", flush=True)
            for worker in workers:
                threading.Thread(target=_watch, args=(worker, stop), daemon=True).start()
            stop.wait()
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        statuses = [worker.wait() for worker in workers]
    return 1 if failed or any(statuses) else 0
