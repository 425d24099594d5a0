"""The package and its commands where POSIX-only pieces are missing, as on Windows.

Each command runs in a child process whose ``sitecustomize`` takes away what
Windows lacks: ``fcntl``, the POSIX-only signals, ``SO_REUSEPORT`` and signal
handlers on an asyncio loop (Windows' proactor loop has none). What cannot
work there must say so in one line, never with an ImportError's traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_demo import ROOT
from tests.etcd_cluster import EtcdCluster, needs_etcd
from tests.eventually import eventually
from transport._signals import STOPPING, add_stop_handlers
from transport.client.sync import Client
from transport.errors import RpcError
from transport.runtime._filelock import NO_FILE_LOCK
from transport.runtime.process import pause, resume
from transport.runtime.wire import HealthRequest, Runtime

_NO_FCNTL = """
import sys
sys.modules["fcntl"] = None  # `import fcntl` raises ImportError, as on Windows
"""

_WINDOWS_LIKE = (
    _NO_FCNTL
    + """
import asyncio.unix_events, signal, socket, subprocess
for name in ("SIGKILL", "SIGSTOP", "SIGCONT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"):
    delattr(signal, name)
subprocess.Popen.kill = subprocess.Popen.terminate  # as Windows' Popen, which needs no SIGKILL
del socket.SO_REUSEPORT

def add_signal_handler(self, *args, **kwargs):
    raise NotImplementedError  # as Windows' proactor loop

asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = add_signal_handler
"""
)

# Every module of the package but the __main__ ones (importing those runs them).
_IMPORT_ALL = """
import importlib, pkgutil, transport, transport.runtime
names = [m.name for m in pkgutil.walk_packages(transport.__path__, "transport.")]
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
print(len(names))
"""

# `python -m transport --help`, then each command it lists with --help: their exit statuses.
_EVERY_HELP = """
import contextlib, io, json, re
from transport.__main__ import main

def status(argv):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            main(argv)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return "returned", out.getvalue()

code, text = status(["--help"])
commands = re.search(r"[{]([a-z,-]+)[}]", text).group(1).split(",")
print(json.dumps({"--help": code, **{c: status([c, "--help"])[0] for c in commands}}))
"""


def _env(tmp_path: Path, prelude: str) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(prelude)
    return {**os.environ, "PYTHONPATH": str(site), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def windows_like(tmp_path: Path) -> dict[str, str]:
    """The environment of a child that has none of what Windows lacks."""
    return _env(tmp_path, _WINDOWS_LIKE)


def _transport(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transport", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Command:
    """A long-running ``python -m transport ARGS...`` (``run``, ``serve``), started."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "transport", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        first = self.lines.get(timeout=30)
        if not first.startswith("listening on "):
            assert self.process.stderr is not None
            err = self.process.stderr.read()
            self.__exit__()
            raise AssertionError(f"did not start: {first!r} {err}")
        self.address = first.removeprefix("listening on ")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put("<eof>")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and stderr."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.stderr is not None
        err = self.process.stderr.read()
        return self.process.wait(timeout=30), err

    def __enter__(self) -> Command:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


# --- the package and every command's help


@pytest.mark.parametrize("prelude", [_NO_FCNTL, _WINDOWS_LIKE], ids=["no-fcntl", "windows-like"])
def test_every_module_imports(tmp_path: Path, prelude: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL],
        cwd=ROOT,
        env=_env(tmp_path, prelude),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 50


def test_every_command_answers_help(windows_like: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _EVERY_HELP],
        cwd=ROOT,
        env=windows_like,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    statuses = json.loads(done.stdout)
    assert {"demo", "proto", "serve", "health", "run", "list", "call"} <= set(statuses)
    assert statuses == dict.fromkeys(statuses, 0)


def test_the_core_demo_runs(windows_like: dict[str, str]) -> None:
    done = _transport(windows_like, "demo", "--core")
    assert done.returncode == 0, done.stderr
    assert "50 ms deadline, silent  -> DEADLINE_EXCEEDED" in done.stdout


def test_proto_prints_a_declaration(windows_like: dict[str, str]) -> None:
    done = _transport(windows_like, "proto", "transport.examples.runner.protocol:RunnerProtocol")
    assert done.returncode == 0, done.stderr
    assert 'syntax = "proto3";' in done.stdout


# --- serving and calling


@pytest.mark.slow
@pytest.mark.parametrize("target", ["binding", "async_bindings"], ids=["sync", "asyncio"])
def test_run_serves_call_and_list_reach_it_and_sigterm_drains(
    windows_like: dict[str, str], target: str
) -> None:
    with Command(windows_like, "run", f"tests.run_app:{target}", "--port", "0") as run:
        listed = _transport(windows_like, "list", run.address)
        assert listed.returncode == 0, listed.stderr
        assert "kv.v1.KV" in listed.stdout.split()
        request = ("kv.v1.KV/Get", '{"key": "k"}', "--declarations", "tests.run_app")
        called = _transport(windows_like, "call", run.address, *request)
        assert called.returncode == 0, called.stderr
        kind = "sync" if target == "binding" else "async"
        assert json.loads(called.stdout)["value"] == f"{kind}:k"
        status, err = run.stop()
    assert (status, err) == (0, "")


def test_run_workers_says_it_needs_so_reuseport(windows_like: dict[str, str]) -> None:
    done = _transport(windows_like, "run", "tests.run_app:binding", "--port", "0", "--workers", "2")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "error: --workers needs SO_REUSEPORT (Linux, macOS, BSD), which this platform lacks: "
        "run one process per port instead\n"
    )


def test_serve_on_a_lease_file_says_it_needs_a_file_lock(
    windows_like: dict[str, str], tmp_path: Path
) -> None:
    done = _transport(windows_like, "serve", "--lease", str(tmp_path / "model.lease"))
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == f"serve: {NO_FILE_LOCK}\n"


def test_the_owner_demo_says_it_needs_a_file_lock(windows_like: dict[str, str]) -> None:
    done = _transport(windows_like, "demo", "--owner")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.count("\n") == 1
    assert "needs fcntl (POSIX) or msvcrt (Windows)" in done.stderr
    assert "demo --etcd" in done.stderr


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path_factory.mktemp("etcd-any-platform"), size=1) as cluster:
        yield cluster


@needs_etcd
@pytest.mark.slow
def test_serve_on_an_etcd_lease_needs_no_file_lock(
    windows_like: dict[str, str], etcd: EtcdCluster
) -> None:
    lease = etcd.url("any-platform")
    with Command(windows_like, "serve", "--lease", lease, "--lease-ttl", "2") as serve:
        with Client.connect(serve.address, timeout=2.0) as client:

            def ready() -> bool:
                try:
                    return client.call(Runtime.Health, HealthRequest()).ready
                except RpcError:
                    return False

            eventually(ready, "the daemon owning its etcd lease", bound=30)
        probed = _transport(windows_like, "health", serve.address)
        assert (probed.returncode, probed.stdout) == (0, "status: SERVING\n")
        status, err = serve.stop()
    assert (status, err) == (0, "")
    lines = []
    while (line := serve.lines.get(timeout=30)) != "<eof>":
        lines.append(line)
    assert lines[-1] == "stopped"


# --- signals where a platform has fewer


def test_a_loop_without_signal_handlers_still_stops_on_sigterm() -> None:
    class ProactorLike(asyncio.SelectorEventLoop):
        def add_signal_handler(self, *args: object, **kwargs: object) -> None:
            raise NotImplementedError

    async def main() -> None:
        stop = asyncio.Event()
        add_stop_handlers(asyncio.get_running_loop(), stop.set)
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 10)

    previous = {signum: signal.getsignal(signum) for signum in STOPPING}
    loop = ProactorLike()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_pause_says_it_needs_sigstop_and_resume_does_nothing_without_sigcont(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(signal, "SIGSTOP")
    monkeypatch.delattr(signal, "SIGCONT")
    with subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE) as child:
        try:
            with pytest.raises(NotImplementedError, match="pausing a process needs SIGSTOP"):
                pause(child)
            resume(child)
            assert child.poll() is None
        finally:
            child.kill()
