"""Fencing decisions as plain state code: no grpc, a fake clock, no sockets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from transport import StatusCode
from transport.runtime.fence import OWNER_METADATA_KEY, Fence, FencedError, LeaseLapsedError

RUNTIME = Path(__file__).resolve().parents[2] / "transport" / "runtime"
PLAIN = (
    "fence.py",
    "handles.py",
    "sessions.py",
    "lease.py",
    "_filelock.py",
    "owner.py",
    "contract.py",
)
# Core modules that do not import grpc themselves.
PLAIN_CORE = {
    "errors",
    "status",
    "encoding.json_codec",
    "encoding.ndarray",
    "encoding.protobuf.schema",  # field numbers
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_metadata_key_is_x_owner_instance() -> None:
    assert OWNER_METADATA_KEY == "x-owner-instance"


def test_the_expected_owner_passes_while_the_lease_is_held() -> None:
    clock = Clock()
    fence = Fence("owner-a", clock=clock)
    fence.check("owner-a")
    fence.hold(clock.now + 5.0)
    clock.now += 4.999
    fence.check("owner-a")
    assert fence.holds_lease


@pytest.mark.parametrize("expected", [None, "", "owner-b", b"owner-a", "owner-a "])
def test_a_missing_or_different_owner_is_aborted_and_names_the_serving_one(
    expected: str | bytes | None,
) -> None:
    fence = Fence("owner-a")
    with pytest.raises(FencedError) as caught:
        fence.check(expected)
    assert caught.value.code is StatusCode.ABORTED
    assert caught.value.serving == "owner-a"


def test_a_call_that_names_no_owner_is_told_so_and_what_to_send() -> None:
    with pytest.raises(FencedError) as caught:
        Fence("owner-a").check(None)
    assert caught.value.message == (
        "fenced: this endpoint is served by owner 'owner-a', "
        "the call named no owner (send x-owner-instance: owner-a)"
    )
    with pytest.raises(FencedError) as caught:
        Fence("owner-a").check("owner-b")
    assert caught.value.message.endswith("the call expected owner 'owner-b'")


def test_the_owner_stops_the_moment_its_clock_passes_the_deadline() -> None:
    clock = Clock()
    fence = Fence("owner-a", clock=clock, holding=False)
    with pytest.raises(LeaseLapsedError) as caught:
        fence.check("owner-a")
    assert caught.value.code is StatusCode.UNAVAILABLE
    fence.hold(clock.now + 1.0)
    fence.check("owner-a")
    clock.now += 1.0  # nothing woke up: the clock alone decides
    assert not fence.holds_lease
    with pytest.raises(LeaseLapsedError):
        fence.check("owner-a")
    assert fence.time_left() == 0.0


def test_a_different_owner_is_aborted_even_while_the_lease_is_lapsed() -> None:
    fence = Fence("owner-a", holding=False)
    with pytest.raises(FencedError):
        fence.check("owner-b")


def test_an_empty_instance_id_disables_fencing() -> None:
    fence = Fence("")
    assert not fence.enabled
    for expected in (None, "", "anyone"):
        fence.check(expected)
    fence.lapse()
    fence.check(None)
    assert fence.holds_lease


def test_listeners_hear_each_change_once() -> None:
    clock = Clock()
    fence = Fence("owner-a", clock=clock, holding=False)
    heard: list[bool] = []
    fence.subscribe(heard.append)
    fence.hold(clock.now + 1.0)
    fence.hold(clock.now + 2.0)  # still held: no news
    clock.now += 3.0
    fence.refresh()  # the owner loop refreshes at the deadline
    fence.refresh()
    fence.hold(clock.now + 1.0)
    fence.lapse()
    assert heard == [True, False, True, False]


@pytest.mark.parametrize("bad", ["with space", "tab\t", "é", "new\nline"])
def test_instance_ids_must_travel_in_metadata(bad: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        Fence(bad)


@pytest.mark.parametrize("module", PLAIN)
def test_plain_state_code_never_imports_grpc(module: str) -> None:
    tree = ast.parse((RUNTIME / module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(not alias.name.startswith("grpc") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            assert not name.startswith("grpc"), f"{module} imports {name}"
            if node.level == 2:  # from ..x import: only core modules without grpc
                assert name in PLAIN_CORE, f"{module} imports ..{name}"
            if node.level == 1:
                assert f"{name}.py" in PLAIN, f"{module} imports .{name}"


@pytest.mark.parametrize("instance_id", ["owner-a", ""])
def test_a_retired_fence_refuses_every_call_for_good_and_says_so_once(instance_id: str) -> None:
    clock = Clock()
    fence = Fence(instance_id, clock=clock)
    heard: list[bool] = []
    fence.subscribe(heard.append)
    fence.retire()
    assert fence.retired and not fence.holds_lease
    with pytest.raises(LeaseLapsedError) as lapsed:
        fence.check(instance_id)
    assert lapsed.value.code is StatusCode.UNAVAILABLE
    fence.hold(clock.now + 60.0)  # a late renewal does not bring it back
    fence.retire()
    assert not fence.holds_lease
    assert heard == [False]
