"""Session handles: minted by one owner, refused everywhere else (plain code, no sockets)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport import StatusCode
from transport.runtime.handles import MAX_HANDLE_LENGTH, Handles, UnknownHandleError, owner_of


def _refused(handles: Handles, handle: str) -> None:
    with pytest.raises(UnknownHandleError) as caught:
        handles.verify(handle)
    assert caught.value.code is StatusCode.NOT_FOUND
    assert caught.value.message == "unknown session handle"


def test_a_minted_handle_verifies_and_names_its_owner() -> None:
    handles = Handles("owner-a")
    handle = handles.mint()
    assert handles.verify(handle) == handle
    assert owner_of(handle) == "owner-a"
    assert handle.isascii() and " " not in handle


def test_handles_carry_128_random_bits_and_never_repeat() -> None:
    handles = Handles("owner-a")
    minted = {handles.mint() for _ in range(1000)}
    assert len(minted) == 1000
    nonce = next(iter(minted)).split(".")[1]
    assert len(base64.urlsafe_b64decode(nonce + "==")) == 16


def test_another_owner_or_a_restarted_owner_refuses_the_handle() -> None:
    handle = Handles("owner-a").mint()
    _refused(Handles("owner-b"), handle)
    # Same instance id, new secret: an owner restarted under its old name.
    _refused(Handles("owner-a"), handle)


def test_forged_truncated_and_tampered_handles_are_refused() -> None:
    handles = Handles("owner-a", secret=b"s" * 32)
    handle = handles.mint()
    owner, nonce, tag = handle.split(".")
    for forged in (
        "",
        ".",
        "..",
        owner,
        f"{owner}.{nonce}",
        f"{owner}.{nonce}.",
        f"{owner}.{nonce}.{'A' * len(tag)}",
        f"{owner}.{nonce[:-1]}B.{tag}",
        f"{owner}x.{nonce}.{tag}",
        handle + "A",
        handle.upper(),
        handle + "." + tag,
    ):
        if forged != handle:
            _refused(handles, forged)
    for end in range(len(handle)):
        _refused(handles, handle[:end])


def test_the_tag_of_another_owner_cannot_be_transplanted() -> None:
    secret = b"k" * 32
    a, b = Handles("owner-a", secret), Handles("owner-b", secret)
    owner_b = b.mint().split(".")[0]
    _, nonce, tag = a.mint().split(".")
    _refused(b, f"{owner_b}.{nonce}.{tag}")


def test_oversized_and_non_ascii_handles_are_refused_before_any_work() -> None:
    handles = Handles("owner-a")
    handle = handles.mint()
    _refused(handles, handle + "A" * MAX_HANDLE_LENGTH)
    _refused(handles, handle[:-1] + "é")
    _refused(handles, "\ud800." + handle)


def test_owner_of_a_malformed_handle_is_none() -> None:
    assert owner_of("no-dots") is None
    assert owner_of("!!!.x.y") is None


@given(st.text(max_size=200))
def test_no_arbitrary_string_verifies(candidate: str) -> None:
    handles = Handles("owner-a", secret=b"fixed" * 8)
    _refused(handles, candidate)


def test_an_unfenced_server_still_mints_verified_handles() -> None:
    handles = Handles("")
    handle = handles.mint()
    assert handles.verify(handle) == handle
    assert owner_of(handle) == ""
