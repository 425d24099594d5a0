"""Opaque session handles that only their owner instance accepts.

A handle is ``<owner>.<nonce>.<tag>`` in base64url without padding: the owner
instance id, 128 random bits, and the first 128 bits of HMAC-SHA256 over
``<owner>.<nonce>`` keyed by a secret drawn when the owner starts. The tag is
checked in constant time before any table lookup, so a guessed, forged,
truncated or previous-owner handle never reaches the session table, and the
lookup's timing says nothing about which handles exist. Plain code, no grpc.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from ..errors import RpcError
from ..status import StatusCode

__all__ = ["MAX_HANDLE_LENGTH", "Handles", "UnknownHandleError"]

#: Longest handle looked at; longer strings are refused before any work.
MAX_HANDLE_LENGTH = 512

_NONCE_BYTES = 16
_TAG_BYTES = 16
# Domain separation: the same secret never MACs anything but handles.
_CONTEXT = b"transport.v1.Runtime handle\x00"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class UnknownHandleError(RpcError):
    """Raised for a handle this owner did not mint or no longer has open: NOT_FOUND."""

    def __init__(self) -> None:
        # One message for every cause, so the answer is no oracle for forgers.
        super().__init__(StatusCode.NOT_FOUND, "unknown session handle")


class Handles:
    """Mint and verify the session handles of one owner instance."""

    __slots__ = ("_keyed", "_prefix", "instance_id")

    def __init__(self, instance_id: str, secret: bytes | None = None) -> None:
        self.instance_id = instance_id
        self._prefix = _b64(instance_id.encode("utf-8")) + "."
        keyed = hmac.new(secret or secrets.token_bytes(32), digestmod=hashlib.sha256)
        keyed.update(_CONTEXT)
        # Copied per handle: the key schedule is computed once, here.
        self._keyed = keyed

    def _tag(self, body: str) -> str:
        mac = self._keyed.copy()
        mac.update(body.encode("ascii"))
        return _b64(mac.digest()[:_TAG_BYTES])

    def mint(self) -> str:
        """A new handle: this owner, 128 fresh random bits, and their tag."""
        body = self._prefix + _b64(secrets.token_bytes(_NONCE_BYTES))
        return f"{body}.{self._tag(body)}"

    def verify(self, handle: str) -> str:
        """Return ``handle`` if this owner minted it; raise :class:`UnknownHandleError` if not."""
        if len(handle) > MAX_HANDLE_LENGTH or not handle.isascii():
            raise UnknownHandleError()
        body, dot, tag = handle.rpartition(".")
        if not dot or not hmac.compare_digest(tag, self._tag(body)):
            raise UnknownHandleError()
        if not body.startswith(self._prefix):  # unreachable without this owner's secret
            raise UnknownHandleError()
        return handle


def owner_of(handle: str) -> str | None:
    """The owner instance id a handle claims (unauthenticated; for diagnostics)."""
    owner, _, rest = handle.partition(".")
    if not rest:
        return None
    try:
        padded = owner + "=" * (-len(owner) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
