"""The runtime server: a :class:`~.contract.Service` on the wire as ``transport.v1.Runtime``.

It serves on ``grpc.aio.server`` (one event loop; the choice is documented in
docs/runtime.md). Async backends are awaited on the loop; sync ones run on the
server's worker threads (:mod:`.adapter`), so a slow model never stalls other
calls. The fence, handle and session decisions are the plain code of
:mod:`.fence`, :mod:`.handles` and :mod:`.sessions`; this module only adapts
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

import grpc.aio

from .._handlers import abort_async
from ..context import AsyncContext
from ..errors import DeclarationError
from ..server import Binding, bind
from .adapter import DEFAULT_MAX_WORKERS, OpenedSession, Workers
from .contract import (
    HealthStatus,
    ModelInfo,
    OpenSessionRequest,
    Service,
    Session,
    as_arrays,
)
from .fence import OWNER_METADATA_KEY, Fence, FencedError, LeaseLapsedError
from .handles import Handles
from .sessions import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_SESSIONS, SessionEntry, SessionTable
from .wire import (
    CloseSessionReply,
    CloseSessionRequest,
    GenerateRequest,
    HealthRequest,
    InferReply,
    InferRequest,
    OpenSessionReply,
    Runtime,
    Token,
)

__all__ = ["Server"]

log = logging.getLogger("transport.runtime")

# The owner a call expects, read from its metadata once, before the call is
# decoded (_FenceFirst), for every later check of the call: grpc.aio runs each
# call in its own task, and the value is reset when the call ends.
_UNREAD = object()
_expected_owner: contextvars.ContextVar[object] = contextvars.ContextVar(
    "transport_runtime_expected_owner", default=_UNREAD
)


class Server:
    """Adapts a model :class:`~.contract.Service` to the wire; mount it with :meth:`register`.

    ``instance_id`` is the owner's lease instance id, checked on every call but
    Health; ``""`` disables fencing (the local, unwired path). ``backend`` is
    echoed by Health. Sessions live here, keyed by opaque handles only this
    instance accepts; at most ``max_sessions`` are open, and one unused for
    ``idle_timeout`` seconds is closed. Sync backend methods run on up to
    ``max_workers`` threads. Call :meth:`close` when done serving.
    """

    def __init__(
        self,
        service: Service,
        instance_id: str = "",
        backend: str = "",
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self.service = service
        self.backend = backend
        self.fence = Fence(instance_id)
        self.handles = Handles(instance_id)
        self.sessions: SessionTable[OpenedSession] = SessionTable(
            max_sessions=max_sessions, idle_timeout=idle_timeout
        )
        self.workers = Workers(max_workers)
        self._keeper = _SessionKeeper(self.sessions)
        self._handlers = _Handlers(
            fence=self.fence,
            handles=self.handles,
            keeper=self._keeper,
            model=_Model(
                describe=self.workers.adapt(service.describe),
                open=self.workers.adapt(service.open_session),
                workers=self.workers,
            ),
            health=self.health,
        )
        self.binding: Binding = bind(Runtime, self._handlers)

    @property
    def instance_id(self) -> str:
        """The owner instance id this server fences with (``""``: unfenced)."""
        return self.fence.instance_id

    @property
    def holds_lease(self) -> bool:
        """Whether fenced calls are served now (False once the lease lapsed or on close)."""
        return self.fence.holds_lease

    @property
    def session_count(self) -> int:
        """The number of open sessions."""
        return len(self.sessions)

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(holds_lease)`` when :attr:`holds_lease` changes.

        Changes come from the lease and from :meth:`close`, which reports
        ``False`` once, even for an unfenced server (see :meth:`Fence.retire`).
        """
        self.fence.subscribe(listener)

    def health(self) -> HealthStatus:
        """What the Health probe answers."""
        return HealthStatus(
            instance_id=self.instance_id, ready=self.holds_lease, backend=self.backend
        )

    def register(self, server: grpc.aio.Server) -> None:
        """Mount ``transport.v1.Runtime`` on a ``grpc.aio`` server.

        Fenced calls are checked against the fence before their request is
        decoded: a call for another owner costs no decoding at all.
        """
        if not isinstance(server, grpc.aio.Server):
            raise DeclarationError("the runtime server must be served on grpc.aio.server")
        server.add_generic_rpc_handlers((_FenceFirst(self.binding.handler, self._handlers),))

    async def close(self) -> None:
        """Refuse every fenced call from now on and close every open session (each once)."""
        self.fence.retire()
        await self._keeper.close_all()
        self.workers.shutdown()

    def drop_sessions(self) -> None:
        """Close every session in the background (the lease was lost: handles die with it)."""
        self._keeper.drop_all()

    async def close_sessions(self, sessions: list[OpenedSession]) -> None:
        """Call the backend's ``close()`` of each session; log, never raise, its errors."""
        await self._keeper.close(sessions)


class _Model(NamedTuple):
    """The backend's calls as the handlers make them (sync ones on worker threads)."""

    describe: Callable[[OpenSessionRequest], Awaitable[ModelInfo]]
    open: Callable[[OpenSessionRequest], Awaitable[Session]]
    workers: Workers


class _SessionKeeper:
    """The lifecycle of open sessions: closing them once, and reaping idle ones."""

    def __init__(self, sessions: SessionTable[OpenedSession]) -> None:
        self.sessions = sessions
        self._tasks: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def close(self, sessions: list[OpenedSession]) -> None:
        """Call the backend's ``close()`` of each session; log, never raise, its errors."""
        for opened in sessions:
            try:
                await opened.close()
            except Exception:
                log.exception("closing a %s session failed", opened.info.type)

    async def close_all(self) -> None:
        """Stop reaping and close every open session."""
        if self._reaper is not None:
            self._reaper.cancel()
        await self.close(self.sessions.drain())

    def drop_all(self) -> None:
        """Close every open session in the background."""
        task = asyncio.get_running_loop().create_task(self.close(self.sessions.drain()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, entry: SessionEntry[OpenedSession]) -> None:
        """Release a session after a call; close it if it was removed meanwhile."""
        closing = self.sessions.release(entry)
        if closing is not None:
            await self.close([closing])

    def release(self, entry: SessionEntry[OpenedSession]) -> Awaitable[None] | None:
        """Release a session after a call; what to await to close it if it was removed meanwhile.

        ``None`` (the usual answer) costs the caller no await.
        """
        closing = self.sessions.release(entry)
        return None if closing is None else self.close([closing])

    def start_reaper(self) -> None:
        """Close sessions left idle past the table's timeout, from now on."""
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())

    async def _reap_idle(self) -> None:
        while True:
            due = self.sessions.next_expiry()
            # A floor of 10 ms: rounding must not make this spin at an expiry instant.
            await asyncio.sleep(max(0.01, self.sessions.idle_timeout if due is None else due))
            await self.close(self.sessions.expire())


class _FenceFirst(grpc.GenericRpcHandler):
    """The binding's handlers, each fenced call admitted before its request is decoded.

    The handlers admit again after decoding (the fence may lapse meanwhile);
    this first check only spares the decoding of calls that would be refused.
    """

    def __init__(self, inner: grpc.GenericRpcHandler, handlers: _Handlers) -> None:
        self._inner = inner
        self._handlers = handlers
        self._fenced: dict[str, Any] = {}  # method path -> its fenced handler, made once

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        """The method handler for ``details``, fenced first unless it is Health."""
        method: str = details.method
        found = self._fenced.get(method)
        if found is None:
            found = self._fence(method, self._inner.service(details))
            if found is not None:  # never a path a peer made up: the cache stays small
                self._fenced[method] = found
        return found

    def _fence(self, method: str, handler: Any) -> Any:
        if handler is None or method.endswith("/Health") or handler.request_streaming:
            return handler
        admit = self._handlers._admit
        if handler.response_streaming:
            streaming = handler.unary_stream

            async def fenced_stream(request: bytes, grpc_context: Any) -> AsyncIterator[bytes]:
                token = await _admitted(admit, grpc_context, method)
                try:
                    async for reply in streaming(request, grpc_context):
                        yield reply
                finally:
                    with contextlib.suppress(ValueError):  # closed from another context
                        _expected_owner.reset(token)

            return grpc.unary_stream_rpc_method_handler(fenced_stream)
        unary = handler.unary_unary

        async def fenced(request: bytes, grpc_context: Any) -> bytes | None:
            token = await _admitted(admit, grpc_context, method)
            try:
                reply: bytes | None = await unary(request, grpc_context)
            finally:
                _expected_owner.reset(token)
            return reply

        return grpc.unary_unary_rpc_method_handler(fenced)


async def _admitted(
    admit: Callable[[AsyncContext], None], grpc_context: Any, path: str
) -> contextvars.Token[object]:
    """Note the owner the call expects and run ``admit``; end the call if it refuses.

    Returns the token that resets the noted owner when the call ends.
    """
    expected = None
    for key, value in grpc_context.invocation_metadata() or ():
        if key == OWNER_METADATA_KEY:
            expected = value
            break
    token = _expected_owner.set(expected)
    context = AsyncContext(grpc_context)
    try:
        admit(context)
    except (FencedError, LeaseLapsedError) as exc:
        _expected_owner.reset(token)
        await abort_async(grpc_context, context, exc, path)
    return token


class _Handlers:
    """The ``transport.v1.Runtime`` methods, as served by :class:`Server`."""

    def __init__(
        self,
        *,
        fence: Fence,
        handles: Handles,
        keeper: _SessionKeeper,
        model: _Model,
        health: Callable[[], HealthStatus],
    ) -> None:
        self._fence = fence
        self._handles = handles
        self._keeper = keeper
        self._sessions = keeper.sessions
        self._model = model
        self._health = health
        self._owner_metadata = ((OWNER_METADATA_KEY, fence.instance_id),)

    def _admit(self, context: AsyncContext) -> None:
        """Let a fenced call through, or refuse it with the serving owner in trailing metadata.

        The expected owner is read from the call's metadata on its first check only.
        """
        expected = _expected_owner.get()
        if expected is _UNREAD:  # a handler mounted without _FenceFirst
            expected = context.metadata_value(OWNER_METADATA_KEY)
        try:
            self._fence.check(expected)  # type: ignore[arg-type]
        except (FencedError, LeaseLapsedError):
            context.set_trailing_metadata(self._owner_metadata)
            raise

    async def Health(self, request: HealthRequest, context: AsyncContext) -> HealthStatus:
        return self._health()

    async def Describe(self, request: OpenSessionRequest, context: AsyncContext) -> ModelInfo:
        self._admit(context)
        return await self._model.describe(request)

    async def OpenSession(
        self, request: OpenSessionRequest, context: AsyncContext
    ) -> OpenSessionReply:
        self._admit(context)
        await self._keeper.close(self._sessions.expire())
        self._sessions.reserve()
        try:
            session: Session = await self._model.open(request)
        except BaseException:
            self._sessions.unreserve()
            raise
        try:
            info = getattr(session, "info", None)
            if not isinstance(info, ModelInfo):
                info = await self._model.describe(request)
            opened = OpenedSession(session, info, self._model.workers)
            # The lease may have lapsed, or the server closed, while the model loaded.
            self._admit(context)
        except BaseException:
            self._sessions.unreserve()
            await self._model.workers.adapt(session.close)()
            raise
        handle = self._handles.mint()
        self._sessions.add(handle, opened)
        self._keeper.start_reaper()
        return OpenSessionReply(handle=handle, info=info)

    async def Infer(self, request: InferRequest, context: AsyncContext) -> InferReply:
        self._admit(context)
        entry = self._sessions.acquire(self._handles.verify(request.handle))
        try:
            outputs = await entry.session.infer(request.inputs)
        finally:
            closing = self._keeper.release(entry)
            if closing is not None:
                await closing
        self._admit(context)  # no answer from an owner whose lease lapsed meanwhile
        return InferReply(outputs=as_arrays(outputs))

    async def Generate(
        self, request: GenerateRequest, context: AsyncContext
    ) -> AsyncIterator[Token]:
        self._admit(context)
        entry = self._sessions.acquire(self._handles.verify(request.handle))
        limit = request.max_tokens
        pieces = entry.session.generate(request.prompt, limit)
        try:
            index = 0
            async for piece in pieces:
                self._admit(context)
                yield Token(index=index, text=piece)
                index += 1
                if index == limit:
                    break
        finally:
            # Close the backend's generator now, not whenever it is collected.
            await pieces.aclose()
            await self._keeper.finish(entry)

    async def CloseSession(
        self, request: CloseSessionRequest, context: AsyncContext
    ) -> CloseSessionReply:
        self._admit(context)
        closing = self._sessions.remove(self._handles.verify(request.handle))
        if closing is not None:
            await self._keeper.close([closing])
        return CloseSessionReply()
