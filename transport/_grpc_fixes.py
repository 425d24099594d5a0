"""A fix for grpcio's asyncio client, applied once when ``transport`` is imported.

grpc/grpc#36066: when a server ends a client-streaming or bidirectional call
before the client has half-closed (it aborts, or answers early), a client write
racing that end fails inside gRPC Core, and ``grpc.aio`` then overwrites the
status the server sent with ``INTERNAL: Internal error from Core``. The sync
client and other gRPC implementations report the server's status. Measured
here: 7% of bidirectional calls whose handler fails at once came back INTERNAL.

The replacement ``_write`` waits (briefly) for the status Core is delivering
and raises that; only if no status arrives does it fall back to grpcio's own
behaviour (which exists to avoid a hang when Core rejects a batch outright).

It replaces a private method, so it is installed only on a grpcio inside the
window it was checked against and only while that method is, to the byte, the
one it was written against; anything else leaves grpcio alone and logs one
warning. ``TRANSPORT_GRPC_AIO_WRITE_FIX=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import inspect
import logging
import os
from typing import Any

log = logging.getLogger("transport")

#: The environment variable that turns the fix off when set to ``0``.
ENV = "TRANSPORT_GRPC_AIO_WRITE_FIX"
# grpcio releases the fix was checked against: the race was reproduced without
# it and gone with it (tests/test_grpc_fixes.py) on 1.84.0 and 1.85.3.
_WINDOW = ((1, 84), (1, 85))
# sha256 of inspect.getsource(grpc.aio._call._StreamRequestMixin._write): the
# same text on grpcio 1.84.0 and 1.85.3 (and back to 1.62.0).
_FINGERPRINTS = frozenset({"9ba399a72c7dfd0353df8ee7b5c55d4a308a04c3f0e4bbfb713e46f12855d7df"})
# How long a failed write waits for the server's status before reporting INTERNAL.
_STATUS_GRACE = 1.0


class State(enum.Enum):
    """What :func:`apply` did to this process's grpcio."""

    INSTALLED = "installed"
    DISABLED = "turned off by the environment"
    REFUSED = "left alone: grpcio is not the one the fix was checked against"


_state: State | None = None


def fingerprint(source: str) -> str:
    """The fingerprint of a method's source text."""
    return hashlib.sha256(source.encode()).hexdigest()


def refusal(version: str, source: str | None) -> str | None:
    """Why the fix must not replace a ``_write`` of this source on this grpcio, or ``None``."""
    try:
        major_minor = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return f"grpcio {version!r} has a version this fix cannot read"
    low, high = _WINDOW
    if not low <= major_minor <= high:
        return (
            f"grpcio {version} is outside {low[0]}.{low[1]} to {high[0]}.{high[1]}, the releases "
            "this fix was checked against"
        )
    if source is None:
        return f"grpcio {version} has no grpc.aio._call._StreamRequestMixin._write"
    if fingerprint(source) not in _FINGERPRINTS:
        return f"grpcio {version} changed grpc.aio._call._StreamRequestMixin._write"
    return None


def apply() -> State:
    """Install the fixed ``_write`` where it is safe to (once); return what was done.

    Never raises: whatever goes wrong leaves grpcio as it is, with one warning.
    """
    global _state
    if _state is None:
        try:
            _state = _install()
        except Exception as exc:  # importing transport must never fail here
            _state = _refuse(f"the fix could not be checked ({exc!r})")
    return _state


def _refuse(reason: str) -> State:
    log.warning(
        "transport: grpc.aio client write fix (grpc/grpc#36066) not installed: %s; a client "
        "stream may report INTERNAL instead of the server's status when the server ends it early",
        reason,
    )
    return State.REFUSED


def _install() -> State:
    if os.environ.get(ENV, "1").strip() == "0":
        return State.DISABLED
    import grpc
    from grpc.aio import _call

    mixin = getattr(_call, "_StreamRequestMixin", None)
    method = getattr(mixin, "_write", None)
    reason = refusal(grpc.__version__, None if method is None else inspect.getsource(method))
    if reason is not None:
        return _refuse(reason)
    mixin._write = _fixed_write()  # type: ignore[union-attr]
    return State.INSTALLED


def _fixed_write() -> Any:
    """The ``_write`` of grpcio 1.85 with the status wait in its ``InternalError`` branch."""
    from grpc import _common
    from grpc._cython import cygrpc
    from grpc.aio import _call

    async def _write(self: Any, request: Any) -> None:
        if self.done():
            raise asyncio.InvalidStateError(_call._RPC_ALREADY_FINISHED_DETAILS)
        if self._done_writing_flag:
            raise asyncio.InvalidStateError(_call._RPC_HALF_CLOSED_DETAILS)
        if not self._metadata_sent.is_set():
            await self._metadata_sent.wait()
            if self.done():
                await self._raise_for_status()
        serialized = _common.serialize(request, self._request_serializer)
        try:
            await self._cython_call.send_serialized_message(serialized)
        except cygrpc.InternalError as err:
            try:
                await asyncio.wait_for(asyncio.shield(self._cython_call.status()), _STATUS_GRACE)
            except asyncio.TimeoutError:
                self._cython_call.set_internal_error(str(err))
            await self._raise_for_status()
        except asyncio.CancelledError:
            if not self.cancelled():
                self.cancel()
            raise

    return _write
