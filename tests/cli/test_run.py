"""``python -m transport run MODULE:ATTR`` serves a user's bindings, run as a user runs it."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from tests.cli.test_demo import ROOT
from tests.conformance.test_security import Pki, pki
from tests.eventually import eventually
from tests.run_app import KV, Key
from transport import Client, RpcError, StatusCode
from transport.__main__ import main
from transport.security import channel_credentials

__all__ = ["pki"]  # the fixture, shared with the security tests

pytestmark = pytest.mark.slow


class Run:
    """``python -m transport run ARGS...`` in a child process, started and listening."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "transport", "run", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its --workers children too are killed in __exit__
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.next_line()
        if not first.startswith("listening on "):
            self.process.kill()
            raise RuntimeError(f"run did not start: {first!r} {self.process.stderr.read()!r}")  # type: ignore[union-attr]
        self.address = first.removeprefix("listening on ")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("<eof>")

    def next_line(self, timeout: float = 30) -> str:
        return self.lines.get(timeout=timeout)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and stderr."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.stderr is not None
        err = self.process.stderr.read()  # until the process closes it, exiting
        return self.process.wait(timeout=30), err

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        # The whole group: a test that failed before stop() must not leave workers behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)  # it has read to the end: the pipe can close
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def test_a_sync_binding_served_with_health_then_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    with Run("tests.run_app:binding", "--port", "0") as run:
        assert run.address.startswith("127.0.0.1:")
        with Client.connect(run.address, timeout=10) as client:
            assert client.call(KV.Get, Key(key="a")).value == "sync:a"
        assert main(["health", run.address]) == 0
        assert main(["health", run.address, "--service", "kv.v1.KV"]) == 0
        assert capsys.readouterr().out == "status: SERVING\n" * 2
        assert run.stop() == (0, "")  # quiet: nothing on stderr
        assert run.next_line() == "<eof>"  # and nothing more on stdout


def test_an_async_factory_is_served_on_asyncio() -> None:
    with Run("tests.run_app:async_bindings", "--port", "0") as run:
        with Client.connect(run.address, timeout=10) as client:
            assert client.call(KV.Get, Key(key="a")).value == "async:a"
        assert run.stop()[0] == 0


@pytest.mark.parametrize("target", ["tests.run_app:binding", "tests.run_app:async_bindings"])
def test_sigterm_drains(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In flight calls finish, new calls are refused UNAVAILABLE, health says NOT_SERVING."""
    release = tmp_path / "release"
    with (
        Run(target, "--port", "0", "--grace", "30") as run,
        Client.connect(run.address, timeout=30) as client,
        futures.ThreadPoolExecutor(max_workers=1) as pool,
    ):
        held = pool.submit(client.call, KV.Hold, Key(key=str(release)))
        assert run.next_line() == "holding"
        run.process.send_signal(signal.SIGTERM)
        with Client.connect(run.address, timeout=10) as late:

            def refused() -> bool:
                try:
                    late.call(KV.Get, Key(key="late"))
                except RpcError as exc:
                    assert exc.code is StatusCode.UNAVAILABLE
                    assert exc.message == "the server is shutting down"
                    return True
                return False  # the signal has not landed yet

            eventually(refused, "new calls refused after SIGTERM", bound=30)
        assert main(["health", run.address]) == 4
        assert "NOT_SERVING" in capsys.readouterr().err
        release.touch()
        assert held.result(timeout=30).value == "released"
        run.process.wait(timeout=30)
        assert run.process.returncode == 0


@pytest.mark.parametrize("target", ["tests.run_app:binding", "tests.run_app:async_bindings"])
def test_a_stream_that_never_ends_is_cut_at_the_grace(target: str) -> None:
    """The process exits within --grace (and a margin for a loaded machine), without a traceback.

    ``Forever`` sleeps 10 s between replies and never looks at its context: a
    ``def`` handler keeps its thread past the server's stop.
    """
    grace = 2.0
    with (
        Run(target, "--port", "0", "--grace", str(grace)) as run,
        Client.connect(run.address, timeout=30) as client,
    ):
        stream = client.call(KV.Forever, Key())
        assert next(stream).value == "tick"
        assert run.next_line() == "streaming"
        sent = time.monotonic()
        status, err = run.stop()
        took = time.monotonic() - sent
        assert status == 0
        assert took < grace + 1.5, f"exited {took:.1f} s after SIGTERM, --grace {grace:g}"
        assert "Traceback" not in err and "CancelledError" not in err, err
        with pytest.raises(RpcError) as caught:
            next(stream)
        assert caught.value.code in (StatusCode.UNAVAILABLE, StatusCode.CANCELLED)


def test_tls(pki: Pki, tmp_path: Path) -> None:
    for name, data in {"cert.pem": pki.server.certificate, "key.pem": pki.server.key}.items():
        (tmp_path / name).write_bytes(data)
    tls = ("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    with Run("tests.run_app:binding", "--port", "0", *tls) as run:
        credentials = channel_credentials(pki.ca)
        with Client.connect(run.address, timeout=10, credentials=credentials) as client:
            assert client.call(KV.Get, Key(key="tls")).value == "sync:tls"
        with Client.connect(run.address, timeout=2) as plaintext, pytest.raises(RpcError):
            plaintext.call(KV.Get, Key())
        assert run.stop()[0] == 0


def test_mutual_tls(pki: Pki, tmp_path: Path) -> None:
    files = {"cert.pem": pki.server.certificate, "key.pem": pki.server.key, "ca.pem": pki.ca}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    tls = ("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    with Run(
        "tests.run_app:binding", "--port", "0", *tls, "--client-ca", str(tmp_path / "ca.pem")
    ) as run:
        mutual = channel_credentials(
            pki.ca, certificate_chain=pki.client.certificate, private_key=pki.client.key
        )
        with Client.connect(run.address, timeout=10, credentials=mutual) as client:
            assert client.call(KV.Get, Key(key="m")).value == "sync:m"
        anonymous = channel_credentials(pki.ca)
        with Client.connect(run.address, timeout=2, credentials=anonymous) as stranger:
            with pytest.raises(RpcError) as refused:
                stranger.call(KV.Get, Key())
            assert refused.value.code is StatusCode.UNAVAILABLE
        assert run.stop()[0] == 0


def test_two_workers_share_the_port() -> None:
    with Run("tests.run_app:binding", "--port", "0", "--workers", "2") as run:
        pids = set()
        # Each client on a new connection, which the kernel spreads. Without the
        # local pool, grpc-core may hand a new channel the last one's connection.
        options = [("grpc.use_local_subchannel_pool", 1)]
        for _ in range(40):
            channel = grpc.insecure_channel(run.address, options=options)
            with Client(channel, timeout=10, owns_channel=True) as client:
                pids.add(client.call(KV.Get, Key()).pid)
            if len(pids) == 2:
                break
        assert len(pids) == 2 and run.process.pid not in pids
        assert run.stop() == (0, "")
        for pid in pids:  # the workers are gone too
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


def test_a_port_in_use_is_refused() -> None:
    with Run("tests.run_app:binding", "--port", "0") as first:
        port = first.address.rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "transport", "run", "tests.run_app:binding", "--port", port],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1 and "error:" in second.stderr
        assert first.stop()[0] == 0


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["tests.run_app"], 1, "'tests.run_app' is not MODULE:ATTR"),
        (["tests.run_app:nope"], 1, "module 'tests.run_app' has no attribute 'nope'"),
        (["no_such_module:app"], 1, "no module named 'no_such_module'"),
        (["tests.run_app:not_a_binding"], 1, "must be a Binding (bind(Service, implementation))"),
        (["tests.run_app:mixed"], 1, "mixes async and sync implementations"),
        (
            ["tests.run_app:async_factory"],
            1,
            "is an async function: return the bindings from a def",
        ),
        (
            ["tests.run_app:binding", "--tls-cert", "c.pem"],
            2,
            "needs both --tls-cert and --tls-key",
        ),
        (["tests.run_app:binding", "--port", "70000"], 2, "is not a port"),
        (
            ["tests.run_app:binding", "--wire", "protobuf"],
            1,
            "kv.v1.KV is JSON-only (its messages have no protobuf field numbers)",
        ),
    ],
)
def test_mistakes_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], status: int, message: str
) -> None:
    assert main(["run", *args]) == status
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_a_seed_service_served_by_run_and_probed(capsys: pytest.CaptureFixture[str]) -> None:
    from transport import Empty
    from transport.examples.runner.client import engage
    from transport.examples.runner.protocol import RunnerProtocol

    with Run("tests.run_app:seed_runner", "--port", "0") as run:
        with Client.connect(run.address, timeout=10) as client:
            outcome = engage(client, "upper", b"hello")
            assert outcome.finished.success and outcome.body == b"HELLO"
            assert client.call(RunnerProtocol.Status, Empty()).active == 0
        service = "--service", RunnerProtocol.service_name()
        assert main(["health", run.address, *service]) == 0
        assert capsys.readouterr().out == "status: SERVING\n"
        assert run.stop()[0] == 0


@pytest.mark.parametrize("wire", ["json", "protobuf"])
def test_run_takes_a_default_wire_and_compression(wire: str) -> None:
    from transport import Empty
    from transport.examples.runner.protocol import RunnerProtocol

    options = ("--port", "0", "--wire", wire, "--compression", "gzip")
    with Run("tests.run_app:seed_runner", *options) as run:
        with Client.connect(run.address, timeout=10, wire=wire, compression="gzip") as client:
            assert client.call(RunnerProtocol.Status, Empty()).active == 0
        assert run.stop()[0] == 0


def test_health_of_a_seed_server_without_the_health_service() -> None:
    """The examples' own ``serve`` mounts no health service: exit 3, and the message says so."""
    seed = subprocess.Popen(
        [sys.executable, "-m", "transport.examples.runner", "serve", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert seed.stdout is not None
        address = seed.stdout.readline().strip().removeprefix("listening on ")
        probe = subprocess.run(
            [sys.executable, "-m", "transport", "health", address],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 3
        assert "does not implement the grpc health protocol" in probe.stderr
    finally:
        seed.send_signal(signal.SIGTERM)
        seed.communicate(timeout=30)


def test_every_option_of_run_reaches_its_workers() -> None:
    import argparse

    from transport.cli.run import add_command
    from transport.cli.workers import _worker_argv

    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers(dest="command"))
    [run] = [
        action.choices["run"]
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    given = ["app:bindings", "--workers", "2"]
    expected: list[str] = []
    switches: list[str] = []
    # --metrics-port (and its host) is refused with --workers: one process's counters.
    skipped = ("help", "workers", "port", "reuse_port", "metrics_port", "metrics_host")
    for action in run._actions:
        if not action.option_strings or action.dest in skipped:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:  # a switch such as --access-log
            given.append(flag)
            switches.append(flag)
            continue
        value = str(action.choices[-1]) if action.choices else "7" if action.type else "x"
        given += [flag, value]
        expected += [flag, value]
    argv = _worker_argv(run.parse_args(given), port=50051)
    for flag in switches:
        assert flag in argv, f"{flag} does not reach the workers"
    for flag, value in zip(expected[::2], expected[1::2], strict=True):
        assert flag in argv, f"{flag} does not reach the workers"
        passed = argv[argv.index(flag) + 1]
        assert passed in (value, f"{value}.0"), f"{flag} does not reach the workers"
