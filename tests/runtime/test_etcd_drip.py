"""An etcd member that drips its answer a byte at a time is a slow member: the next one answers.

A socket timeout bounds each read, and a member (or a half-broken proxy in
front of one) that sends a byte every 0.3 s never trips it. These tests put
such a member first in the URL and a real etcd member second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.etcd_cluster import EtcdCluster, needs_etcd
from transport.runtime import etcd
from transport.runtime.etcd import Gateway
from transport.runtime.process import DaemonProcess

#: A valid-looking gateway answer: it would take the dripping member two minutes to send.
ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"
    + b'{"header":{"revision":"1"}}'.ljust(300)
)
DRIP_INTERVAL = 0.3
REQUEST_TIMEOUT = 1.0  # the gateway's default, which `serve` uses
MARGIN = 1.5  # a loaded test machine


class DrippingMember:
    """A TCP server on 127.0.0.1 that answers every connection one byte per 0.3 s."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that the accepting thread sees stop()
        self.port: int = self._listener.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return
            connection.settimeout(None)
            self.connections += 1
            thread = threading.Thread(target=self._drip, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _drip(self, connection: socket.socket) -> None:
        with connection:
            for index in range(len(ANSWER)):
                if self._stop.wait(DRIP_INTERVAL):
                    return
                try:
                    connection.sendall(ANSWER[index : index + 1])
                except OSError:  # the client gave up on this member
                    return

    def stop(self) -> None:
        """Stop dripping, close every connection and the listener."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()


@pytest.fixture
def drip() -> Iterator[DrippingMember]:
    member = DrippingMember()
    try:
        yield member
    finally:
        member.stop()


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster(tmp_path_factory.mktemp("etcd-drip"), size=1) as cluster:
        yield cluster


def _within(bound: float, work: object) -> float:
    """Run ``work()`` on a thread; the seconds it took, failing if it takes over ``bound``."""
    assert callable(work)
    pool = ThreadPoolExecutor(1)
    started = time.monotonic()
    future = pool.submit(work)
    try:
        future.result(timeout=bound)
    except TimeoutError:
        pytest.fail(f"the request was not answered within {bound:g} s")
    finally:
        # A call stuck on the dripping member ends when the fixture stops the drip.
        pool.shutdown(wait=False)
    return time.monotonic() - started


@needs_etcd
def test_a_request_moves_on_from_a_dripping_member(drip: DrippingMember, good: EtcdCluster) -> None:
    gateway = Gateway([("127.0.0.1", drip.port), ("127.0.0.1", good.members[0].client_port)])
    took = _within(REQUEST_TIMEOUT + MARGIN, lambda: etcd.get(gateway, b"/transport/drip"))
    gateway.close()  # not in a `finally`: a request stuck on the drip holds the gateway
    assert drip.connections == 1  # it was asked first, and given up on
    assert gateway.member == good.members[0].endpoint
    assert took >= REQUEST_TIMEOUT * 0.9  # the dripping member had its full second


@needs_etcd
def test_a_watch_moves_on_from_a_dripping_member(drip: DrippingMember, good: EtcdCluster) -> None:
    gateway = Gateway([("127.0.0.1", drip.port), ("127.0.0.1", good.members[0].client_port)])

    def watch() -> None:
        for _ in gateway.watch(b"/transport/drip-watch", 1, idle_timeout=0.5):
            pass

    _within(REQUEST_TIMEOUT + 0.5 + MARGIN, watch)
    gateway.close()
    assert drip.connections == 1


@needs_etcd
def test_serve_answers_health_with_a_dripping_member_first(
    drip: DrippingMember, good: EtcdCluster
) -> None:
    url = f"etcd://{drip.endpoint},{good.members[0].endpoint}/transport/drip-serve"
    started = time.monotonic()
    # Startup asks etcd with a few fresh gateways (the check, the store, its
    # watch), each trying the dripping member first for its second.
    with DaemonProcess("--listen", "127.0.0.1:0", "--lease", url, start_timeout=12) as daemon:
        status = daemon.wait_ready(timeout=10)
    took = time.monotonic() - started
    assert status.ready and took < 15, f"serving after {took:.1f} s"
