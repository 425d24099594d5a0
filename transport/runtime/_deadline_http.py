"""HTTP over :mod:`http.client` with a deadline for each whole request, not for each read.

A socket timeout bounds each ``recv``: a peer (or a half-broken proxy) that
sends its answer a byte every half second never trips it, and one request
lasts as long as the peer likes. :class:`DeadlineConnection` gives every send
and receive of a request only the time left until the request's deadline.
"""

from __future__ import annotations

import http.client
import math
import socket
import time
from typing import Any

__all__ = ["DeadlineConnection", "DeadlineSocket"]


class DeadlineSocket(socket.socket):
    """A socket whose sends and receives all end by one :attr:`deadline` (monotonic).

    A plain socket timeout bounds each ``recv``, so a peer sending a byte now
    and then would never time out; here each call gets only what is left.
    """

    deadline = math.inf

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.settimeout(left)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """``socket.recv_into`` within the deadline."""
        self._arm()
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """``socket.recv`` within the deadline."""
        self._arm()
        return super().recv(bufsize, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        """``socket.sendall`` within the deadline (its timeout covers the whole send)."""
        self._arm()
        super().sendall(data, flags)


class DeadlineConnection(http.client.HTTPConnection):
    """An HTTP connection whose requests end by a deadline, set with :meth:`ends_by`."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.deadline = math.inf

    def ends_by(self, deadline: float) -> None:
        """Bound what follows (connect, send, read) by ``deadline`` (``time.monotonic()``)."""
        self.deadline = deadline
        if isinstance(self.sock, DeadlineSocket):
            self.sock.deadline = deadline

    def connect(self) -> None:
        """Connect within the deadline, on a socket that keeps to it."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        plain = socket.create_connection((self.host, self.port), left)
        sock = DeadlineSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does
        sock.deadline = self.deadline
        self.sock = sock
