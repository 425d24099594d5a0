"""A model daemon in a child process, for demos, tests and benchmarks.

:class:`DaemonProcess` runs ``python -m transport serve ARGS...``, reads the
endpoint it prints, probes it, and pauses, kills or stops it. Pausing needs
SIGSTOP (POSIX); a graceful stop is SIGTERM on POSIX and Ctrl-Break on
Windows, where the daemon runs in a process group of its own to receive it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..client.sync import Client as RpcClient
from ..errors import RpcError
from .contract import HealthStatus
from .wire import HealthRequest, Runtime

__all__ = ["DaemonProcess", "pause", "resume", "wait_for"]

_LISTENING = "listening on "


def wait_for(condition: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; raise ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def pause(process: subprocess.Popen[Any]) -> None:
    """SIGSTOP ``process``; return once all its threads have stopped (where ``/proc`` tells).

    ``kill`` returns before a busy process has stopped: a request it takes in
    that moment would still be answered. POSIX only: elsewhere it raises
    ``NotImplementedError`` saying so.
    """
    if not hasattr(signal, "SIGSTOP"):
        raise NotImplementedError("pausing a process needs SIGSTOP, which only POSIX has")
    process.send_signal(signal.SIGSTOP)
    tasks = Path(f"/proc/{process.pid}/task")  # Linux: a folder for each thread
    if tasks.is_dir():
        wait_for(lambda: _stopped(tasks), 10, f"process {process.pid} stopping")


def resume(process: subprocess.Popen[Any]) -> None:
    """SIGCONT ``process``, where the platform has it (elsewhere nothing can have paused it)."""
    sigcont = getattr(signal, "SIGCONT", None)
    if sigcont is not None:
        process.send_signal(sigcont)  # a no-op once the process has exited


def _stopped(tasks: Path) -> bool:
    """Whether every thread in ``tasks`` (``/proc/PID/task``) is stopped (state T)."""
    states = []
    for task in tasks.iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that has just exited
            # "tid (comm) state ...": comm may hold spaces and parentheses.
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
    return bool(states) and all(state in ("T", "t") for state in states)


class DaemonProcess:
    """``python -m transport serve ARGS...`` in a child process.

    The constructor returns once the daemon printed ``listening on HOST:PORT``;
    its later stdout lines are kept in :attr:`lines` (and echoed to ``echo``).
    """

    def __init__(
        self,
        *args: str,
        name: str = "daemon",
        echo: Callable[[str], None] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.name = name
        self.lines: list[str] = []
        self._echo = echo
        self._first: queue.SimpleQueue[str] = queue.SimpleQueue()
        group = 0
        if sys.platform == "win32":  # so that stop() can send it Ctrl-Break alone
            group = subprocess.CREATE_NEW_PROCESS_GROUP
        self.process = subprocess.Popen(
            [sys.executable, "-m", "transport", "serve", *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            creationflags=group,
        )
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()
        try:
            line = self._first.get(timeout=start_timeout)
        except queue.Empty:
            self.close()
            raise TimeoutError(f"{name} did not start within {start_timeout} s") from None
        if not line.startswith(_LISTENING):
            self.close()
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.endpoint = line[len(_LISTENING) :]
        self._probe = RpcClient.connect(self.endpoint, timeout=1.0)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            if not self.lines:
                self._first.put(line)
            self.lines.append(line)
            if self._echo is not None:
                self._echo(f"[{self.name}] {line}")
        if not self.lines:
            self._first.put(f"exited with status {self.process.wait()}")

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def health(self, timeout: float = 1.0) -> HealthStatus | None:
        """The daemon's Health answer, or ``None`` if it does not answer in ``timeout``."""
        try:
            return self._probe.call(Runtime.Health, HealthRequest(), timeout=timeout)
        except RpcError:
            return None

    def wait_ready(self, timeout: float = 10.0, *, ready: bool = True) -> HealthStatus:
        """Poll Health until it answers ``ready`` (True by default); returns that answer."""
        answers: list[HealthStatus] = []

        def answered() -> bool:
            status = self.health()
            if status is not None and status.ready == ready:
                answers.append(status)
            return bool(answers)

        wait_for(answered, timeout, f"{self.name} answering ready={ready}")
        return answers[0]

    def pause(self) -> None:
        """SIGSTOP the daemon (it keeps its sockets but runs nothing); return once stopped."""
        pause(self.process)

    def resume(self) -> None:
        """SIGCONT the daemon."""
        resume(self.process)

    def kill(self) -> None:
        """SIGKILL the daemon: no graceful shutdown, the lease is not released."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM the daemon (graceful: sessions closed, lease released); its exit status.

        On Windows, Ctrl-Break (SIGTERM there ends a process at once). Returns
        once the daemon has exited and all its output is in :attr:`lines`.
        """
        if self.process.poll() is None:
            resume(self.process)
            if sys.platform == "win32":
                self.process.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                self.process.terminate()
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._reader.join(timeout=timeout)  # every line it printed is in `lines` now
        return status

    def close(self) -> None:
        """Kill the daemon if it still runs, and close the probe's channel."""
        self.kill()
        probe = getattr(self, "_probe", None)
        if probe is not None:
            probe.close()
        self._reader.join(timeout=10)  # the pipe ends with the process
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
