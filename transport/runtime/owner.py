"""The owner loop: acquire the lease or wait as standby, renew it, release it.

The decisions are plain code (:meth:`Owner.step` does one round and says when
to come back); :meth:`Owner.run` drives them on asyncio, with the store's
blocking I/O on a worker thread and every state change on the event loop.

The timing argument (docs/runtime.md, "Leases and takeover"): before each acquire or
renew the owner reads its lease clock (monotonic, counting suspend; ``m0``);
the store then writes ``expiresAt = wall_now + ttl`` with ``wall_now`` read
later than ``m0``. The owner serves fenced calls only while
``clock() < m0 + ttl - margin``, and a standby takes over only once the wall
clock has passed ``expiresAt``. As long as the two clocks disagree by less than
``margin`` over one ``ttl``, the old owner has stopped before the new one
starts, however long it was paused or cut off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from .fence import Fence, lease_clock
from .lease import LeaseError, LeaseRecord, LeaseStore

__all__ = ["DEFAULT_LEASE_TTL", "Owner"]

log = logging.getLogger("transport.runtime")

#: Seconds a lease lasts unless configured otherwise.
DEFAULT_LEASE_TTL = 10.0
#: A store error that repeats is logged again at most this often (seconds).
ERROR_REPORT_INTERVAL = 60.0


class Owner:
    """One instance's claim on a lease, driving its :class:`Fence`.

    Defaults: renew every ``ttl / 3``, stop serving ``ttl / 5`` before the
    lease could expire (``safety_margin``), poll a held lease every ``ttl / 10``
    (between 20 ms and 1 s) while standby, and retry after a store error as
    often. A store with a ``poll_interval`` (etcd, which waits for the
    lease to be freed inside ``acquire``) sets the standby's pause itself.
    """

    def __init__(
        self,
        store: LeaseStore,
        fence: Fence,
        endpoint: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        renew_interval: float | None = None,
        safety_margin: float | None = None,
        on_acquired: Callable[[LeaseRecord], None] | None = None,
        on_lost: Callable[[LeaseRecord], None] | None = None,
        monotonic: Callable[[], float] = lease_clock,
    ) -> None:
        if not fence.instance_id:
            raise ValueError("an owner needs a non-empty instance id (fencing is off without)")
        self.store = store
        self.fence = fence
        self.endpoint = endpoint
        self.ttl = ttl
        self.safety_margin = ttl / 5 if safety_margin is None else safety_margin
        self.renew_interval = ttl / 3 if renew_interval is None else renew_interval
        if not 0 < self.renew_interval < ttl - self.safety_margin:
            raise ValueError(
                f"renew_interval {self.renew_interval} must be positive and below ttl - "
                f"safety_margin = {ttl - self.safety_margin}"
            )
        #: Seconds between retries after a store error.
        self.retry_interval = min(1.0, max(0.02, ttl / 10))
        # A store that waits for the lease to be freed inside acquire (etcd
        # watches its key) names its own, shorter, pause between a standby's polls.
        self.poll_interval: float = (
            self.retry_interval if store.poll_interval is None else store.poll_interval
        )
        self.record: LeaseRecord | None = None
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._monotonic = monotonic
        self._stopped: anyio.Event | None = None
        self._stop_requested = False
        self._reported: tuple[str, float] | None = None  # the last store error logged, when

    @property
    def instance_id(self) -> str:
        """The instance id this owner claims the lease for."""
        return self.fence.instance_id

    def attempt(self) -> LeaseRecord | None:
        """The store operation of this round (blocking I/O; changes no state here)."""
        if self.record is None:
            return self.store.acquire(self.instance_id, self.endpoint, self.ttl)
        return self.store.renew(self.record, self.ttl)

    def settle(self, result: LeaseRecord | None, started: float) -> float:
        """Apply the outcome of :meth:`attempt` begun at monotonic ``started``.

        Returns the seconds until the next round.
        """
        if result is not None:
            first = self.record is None
            self.record = result
            self.fence.hold(started + self.ttl - self.safety_margin)
            if first:
                log.info("%s owns the lease, term %d", self.instance_id, result.term)
                if self._on_acquired is not None:
                    self._on_acquired(result)
            return self.renew_interval
        lost, self.record = self.record, None
        if lost is not None:
            self.fence.lapse()
            log.warning("%s lost the lease of term %d", self.instance_id, lost.term)
            if self._on_lost is not None:
                self._on_lost(lost)
        return self.poll_interval

    def step(self) -> float:
        """One round, synchronously: acquire or renew. Returns seconds until the next."""
        started = self._monotonic()
        return self.settle(self.attempt(), started)

    def release(self) -> None:
        """Stop serving and give the lease up, so a standby can take over at once."""
        held, self.record = self.record, None
        self.fence.lapse()
        if held is not None:
            self.store.release(held)
            log.info("%s released the lease of term %d", self.instance_id, held.term)

    async def run(self) -> None:
        """Drive the loop until :meth:`stop`; store errors are logged and retried.

        The fence lapses on its own clock when renewals fail, and listeners hear
        of it at the deadline. For a graceful shutdown, :meth:`stop`, await this,
        then :meth:`release` (on a worker thread: it writes the store).
        """
        self._stopped = anyio.Event()
        if self._stop_requested:
            self._stopped.set()
        while not self._stopped.is_set():
            started = self._monotonic()
            try:
                result = await anyio.to_thread.run_sync(self.attempt)
            except LeaseError as exc:
                self._report(str(exc), started)
                delay = self.retry_interval
            else:
                self._reported = None
                delay = self.settle(result, started)
            left = self.fence.time_left()
            if self.record is not None and left < delay:
                # Wake at the local deadline so that listeners hear of the lapse.
                await self._pause(left)
                self.fence.refresh()
                delay -= left
            await self._pause(delay)

    def _report(self, error: str, now: float) -> None:
        """Log a store error once, then again only every :data:`ERROR_REPORT_INTERVAL` s."""
        if self._reported is not None:
            last, when = self._reported
            if last == error and now - when < ERROR_REPORT_INTERVAL:
                return
        self._reported = (error, now)
        log.warning("%s: lease store error: %s", self.instance_id, error)

    def stop(self) -> None:
        """Make :meth:`run` return after its current round (the lease stays held)."""
        self._stop_requested = True
        if self._stopped is not None:
            self._stopped.set()

    async def _pause(self, seconds: float) -> None:
        assert self._stopped is not None
        with anyio.move_on_after(seconds):
            await self._stopped.wait()
