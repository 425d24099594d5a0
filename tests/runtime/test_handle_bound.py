"""A handle of at most 512 characters is looked at; a longer one is refused unread."""

from __future__ import annotations

import pytest

from transport.runtime.handles import Handles, UnknownHandleError, owner_of

# A handle is base64url(owner) "." 22 characters of nonce "." 22 of tag: an owner
# id of 349 characters makes 466 + 46 = 512 of them, of 350 one more.


def test_a_handle_of_512_characters_is_verified() -> None:
    handles = Handles("a" * 349)
    handle = handles.mint()
    assert len(handle) == 512
    assert handles.verify(handle) == handle


def test_a_handle_of_513_characters_is_refused_though_its_owner_minted_it() -> None:
    handles = Handles("a" * 350)
    handle = handles.mint()
    assert len(handle) == 513
    with pytest.raises(UnknownHandleError):
        handles.verify(handle)


@pytest.mark.parametrize("owner", ["a", "ab", "abc", "owner-1", "é" * 5])
def test_the_owner_a_handle_names_reads_back_whatever_its_padding(owner: str) -> None:
    assert owner_of(Handles(owner).mint()) == owner
