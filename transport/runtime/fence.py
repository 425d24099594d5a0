"""Fencing: whether a call addressed to an owner may run on this process, now.

Plain state code (no grpc): the gRPC layer asks :meth:`Fence.check` before any
side effect and turns its errors into statuses. A call names the owner it
expects in metadata ``x-owner-instance``; it runs only if that is this process's
instance id and this process holds the lease by its own monotonic clock.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from ..errors import RpcError
from ..status import StatusCode

__all__ = ["OWNER_METADATA_KEY", "Fence", "FencedError", "LeaseLapsedError", "lease_clock"]

#: Request metadata naming the expected owner; trailing metadata naming the serving one.
OWNER_METADATA_KEY = "x-owner-instance"

_PRINTABLE = re.compile(r"[!-~]+")


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


#: The clock an owner measures its lease with: monotonic, and on Linux counting
#: time the machine spent suspended (CLOCK_BOOTTIME), since the wall clock that
#: decides expiry for a standby keeps counting then too.
lease_clock: Callable[[], float] = _boottime if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic


class FencedError(RpcError):
    """Raised when a call names another owner (or none): ABORTED, nothing was done."""

    def __init__(self, serving: str, expected: str | bytes | None) -> None:
        if expected is None:
            asked = f"the call named no owner (send {OWNER_METADATA_KEY}: {serving})"
        else:
            asked = f"the call expected owner {expected!r}"
        super().__init__(
            StatusCode.ABORTED, f"fenced: this endpoint is served by owner {serving!r}, {asked}"
        )
        self.serving = serving


class LeaseLapsedError(RpcError):
    """Raised when this owner does not hold its lease now: UNAVAILABLE, nothing was done."""

    def __init__(self, serving: str) -> None:
        super().__init__(
            StatusCode.UNAVAILABLE, f"owner {serving!r} does not hold its lease; re-resolve"
        )
        self.serving = serving


class Fence:
    """The fencing decision of one owner instance.

    ``instance_id=""`` disables fencing (every call passes, always ready). The
    fence holds from creation unless ``holding=False``; an owner loop moves it
    with :meth:`hold` (until a monotonic deadline) and :meth:`lapse`. Between
    those, the clock alone decides: past the deadline, calls are refused even if
    nothing woke up to say so.
    """

    __slots__ = ("_clock", "_listeners", "_notified", "_retired", "_valid_until", "instance_id")

    def __init__(
        self,
        instance_id: str,
        *,
        holding: bool = True,
        clock: Callable[[], float] = lease_clock,
    ) -> None:
        if instance_id and not _PRINTABLE.fullmatch(instance_id):
            raise ValueError(
                f"instance id {instance_id!r} must be printable ASCII without spaces (it "
                "travels in metadata)"
            )
        self.instance_id = instance_id
        self._clock = clock
        self._valid_until = math.inf if holding else -math.inf
        self._listeners: list[Callable[[bool], None]] = []
        self._retired = False
        self._notified = self.holds_lease

    @property
    def enabled(self) -> bool:
        """Whether calls are fenced at all (a non-empty instance id)."""
        return bool(self.instance_id)

    @property
    def holds_lease(self) -> bool:
        """Whether this owner may serve fenced calls now, by its own clock (never once retired)."""
        if self._retired:
            return False
        return not self.instance_id or self._clock() < self._valid_until

    @property
    def retired(self) -> bool:
        """Whether :meth:`retire` was called: the owner serves no fenced call again."""
        return self._retired

    def time_left(self) -> float:
        """Seconds until the lease may have lapsed (``inf`` when held without a deadline)."""
        return max(0.0, self._valid_until - self._clock())

    def check(self, expected: str | bytes | None) -> None:
        """Let a call that expects owner ``expected`` through, or raise why not.

        Raises :class:`FencedError` when ``expected`` is missing or another owner, and
        :class:`LeaseLapsedError` when this owner does not hold its lease now or has
        retired (even when fencing is off).
        """
        if self._retired:
            raise LeaseLapsedError(self.instance_id)
        if not self.instance_id:
            return
        if expected != self.instance_id:
            raise FencedError(self.instance_id, expected)
        if self._clock() >= self._valid_until:
            raise LeaseLapsedError(self.instance_id)

    def hold(self, until: float | None) -> None:
        """Hold the lease until monotonic time ``until`` (``None``: with no deadline)."""
        self._valid_until = math.inf if until is None else until
        self.refresh()

    def lapse(self) -> None:
        """Stop serving fenced calls now (the lease was lost or released)."""
        self._valid_until = -math.inf
        self.refresh()

    def retire(self) -> None:
        """Stop serving fenced calls for good (the server is closing), fenced or not.

        The final state: :meth:`hold` no longer moves it, every :meth:`check`
        raises :class:`LeaseLapsedError`, and listeners hear ``False`` once.
        """
        self._retired = True
        self.refresh()

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(holds_lease)`` whenever the lease state is seen to change.

        Changes are seen at :meth:`hold`, :meth:`lapse` and :meth:`refresh`;
        the owner loop refreshes at every deadline, so a lapse is reported even
        when no renewal happens. Listeners run on the thread that made the change
        (the owner loop's event loop under :func:`~transport.runtime.serve`).
        """
        self._listeners.append(listener)

    def refresh(self) -> None:
        """Report a change of :attr:`holds_lease` to the listeners, if there was one."""
        holding = self.holds_lease
        if holding != self._notified:
            self._notified = holding
            for listener in list(self._listeners):
                listener(holding)
