"""The fence's state as plain values: ``retired``, ``holds_lease`` and ``enabled`` are bools."""

from __future__ import annotations

from transport.runtime.fence import Fence


def test_the_fence_state_reads_as_bools() -> None:
    fence = Fence("owner-a")
    assert (fence.enabled, fence.holds_lease, fence.retired) == (True, True, False)
    fence.lapse()
    assert (fence.holds_lease, fence.retired) == (False, False)
    fence.retire()
    assert (fence.holds_lease, fence.retired) == (False, True)
    assert Fence("").enabled is False
