"""What a handler sees of its call: deadline, metadata, cancellation, its caller, a way to fail."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import grpc
import grpc.aio

from .error_details import ErrorDetail
from .errors import RpcError
from .metadata import Metadata, user_metadata
from .peer import PeerIdentity, peer_identity
from .status import StatusCode

__all__ = ["AsyncContext", "Context"]

# Guards the lazy creation of Context._done (cheap: taken once per waiting call).
_DONE_LOCK = threading.Lock()


class _ContextBase:
    __slots__ = ("_grpc", "_initial", "_initial_sent", "_trailing")

    def __init__(self, grpc_context: Any) -> None:
        self._grpc = grpc_context
        self._trailing: list[tuple[str, str | bytes]] = []
        # Entries the library adds to the initial metadata (its batch announcement).
        self._initial: tuple[tuple[str, str | bytes], ...] = ()
        self._initial_sent = False

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The metadata the client sent with the call (without the library's own entries)."""
        return user_metadata(self._grpc.invocation_metadata())

    def metadata_value(self, key: str) -> str | bytes | None:
        """The first value the client sent under ``key``, or ``None``."""
        for name, value in self.invocation_metadata():
            if name == key:
                return value
        return None

    def time_remaining(self) -> float | None:
        """Seconds left before the client's deadline, or ``None`` without one."""
        remaining: float | None = self._grpc.time_remaining()
        # grpcio reports "no deadline" as a huge number of seconds.
        if remaining is None or remaining > 10**8:
            return None
        return max(0.0, remaining)

    def peer(self) -> str:
        """The client's address as grpcio reports it (``ipv4:127.0.0.1:port``)."""
        return str(self._grpc.peer())

    def peer_identity(self) -> PeerIdentity:
        """Who is calling, as the server verified it: TLS, client certificate, token principal.

        ``certificate`` is set only under mutual TLS (a server with
        ``client_ca``), ``token_principal`` only where a token interceptor
        admitted the call; see :class:`~transport.peer.PeerIdentity`.
        """
        return peer_identity(self._grpc)

    def set_trailing_metadata(self, metadata: Metadata) -> None:
        """Send ``metadata`` to the client when the call ends (replaces earlier calls)."""
        self._trailing = list(metadata)
        self._grpc.set_trailing_metadata(tuple(self._trailing))

    def add_trailing_metadata(self, metadata: Metadata) -> None:
        """Add ``metadata`` to what the client gets when the call ends (after earlier entries)."""
        self.set_trailing_metadata((*self._trailing, *metadata))

    @property
    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The trailing metadata set so far."""
        return tuple(self._trailing)

    def abort(
        self,
        code: StatusCode,
        message: str = "",
        details: Any = None,
        *,
        error_details: Iterable[ErrorDetail] = (),
    ) -> NoReturn:
        """End the call with ``code``, ``message``, JSON ``details`` and typed ``error_details``.

        Raises :class:`~transport.RpcError`, as a handler may itself.
        """
        raise RpcError(code, message, details, error_details=error_details)


class Context(_ContextBase):
    """The context of a call served by a synchronous handler (``grpc.server``)."""

    __slots__ = ("_done",)

    def __init__(self, grpc_context: grpc.ServicerContext) -> None:
        super().__init__(grpc_context)
        self._done: threading.Event | None = None

    def send_initial_metadata(self, metadata: Metadata) -> None:
        """Send ``metadata`` to the client now, before the first response."""
        self._initial_sent = True
        self._grpc.send_initial_metadata((*metadata, *self._initial))

    def _send_own_initial(self) -> None:
        """Send the library's initial metadata unless the handler has sent its own with it."""
        if self._initial and not self._initial_sent:
            self._initial_sent = True
            self._grpc.send_initial_metadata(self._initial)

    def is_active(self) -> bool:
        """False once the call has ended: the client cancelled or the deadline passed."""
        return bool(self._grpc.is_active())

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on another thread) when the call ends for any reason."""
        self._grpc.add_callback(callback)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the call ends or ``timeout`` passes; True if it ended.

        A long-running handler waits here to learn of a client cancel or an
        expired deadline instead of polling :meth:`is_active`.
        """
        with _DONE_LOCK:  # two threads of one handler may wait at once
            if self._done is None:
                done = threading.Event()
                # add_callback() is False once the call has ended: the callback
                # would never run, so the event is set here instead.
                if not self._grpc.add_callback(done.set) or not self._grpc.is_active():
                    done.set()
                self._done = done
        return self._done.wait(timeout)


class AsyncContext(_ContextBase):
    """The context of a call served by an asyncio handler (``grpc.aio.server``).

    A client cancel or an expired deadline cancels the handler's task.
    """

    __slots__ = ()

    def __init__(self, grpc_context: grpc.aio.ServicerContext[Any, Any]) -> None:
        super().__init__(grpc_context)

    async def send_initial_metadata(self, metadata: Metadata) -> None:
        """Send ``metadata`` to the client now, before the first response."""
        self._initial_sent = True
        await self._grpc.send_initial_metadata((*metadata, *self._initial))

    async def _send_own_initial(self) -> None:
        """Send the library's initial metadata unless the handler has sent its own with it."""
        if self._initial and not self._initial_sent:
            self._initial_sent = True
            await self._grpc.send_initial_metadata(self._initial)

    def cancelled(self) -> bool:
        """True once the client has cancelled the call or its deadline has passed."""
        return bool(self._grpc.cancelled())
