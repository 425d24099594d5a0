"""bind() refuses an implementation annotated against its declaration, naming the method and fix.

Each wrong implementation is also a mypy error (``transport.mypy_plugin``): the
``# type: ignore[arg-type]`` on its ``bind`` line must stay needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.echo_service import Echo, Note
from transport import Context, DeclarationError, Message, bind


class Other(Message):
    """A message the declaration does not name."""

    text: str = ""


class ReturnsDict:
    def Say(self, request: Note, context: Context) -> dict[str, str]:
        return {"text": request.text}


class TakesOther:
    def Say(self, request: Other) -> Note:
        return Note()


class OneForAStream:
    def Collect(self, requests: Note) -> Note:
        return requests


class AStreamForOne:
    def Say(self, request: Note) -> Iterator[Note]:
        yield request


class SyncStreamInAsync:
    async def Repeat(self, request: Note) -> Iterator[Note]:  # type: ignore[misc]
        yield request


class ReturnsAStream:
    async def Repeat(self, request: Note) -> AsyncIterator[Note]:
        return _notes()


async def _notes() -> AsyncIterator[Note]:
    yield Note()


class Loose:
    """What the check must let through: no hints, Any, object, unions, lists."""

    def Say(self, request, context):  # type: ignore[no-untyped-def]
        return request

    def Repeat(self, request: Any) -> Iterator[Any]:
        yield request

    def Collect(self, requests: object, context: object) -> Note | Any:
        return Note()

    def Chat(self, requests: Iterator[Note]) -> list[Note]:
        return list(requests)


class AsyncStreams:
    async def Repeat(self, request: Note) -> AsyncIterator[Note]:
        yield request

    async def Chat(self, requests: AsyncIterator[Note]) -> AsyncIterator[Note]:
        async for note in requests:
            yield note


def test_a_reply_type_against_the_declaration_is_refused_at_bind() -> None:
    with pytest.raises(DeclarationError) as caught:
        bind(Echo, ReturnsDict())  # type: ignore[arg-type]
    assert str(caught.value) == (
        "ReturnsDict.Say returns dict[str, str] but transport.tests.Echo/Say answers Note; "
        "annotate it -> Note"
    )


def test_a_request_type_against_the_declaration_is_refused_at_bind() -> None:
    with pytest.raises(DeclarationError) as caught:
        bind(Echo, TakesOther())  # type: ignore[arg-type]
    assert str(caught.value) == (
        "TakesOther.Say takes Other but transport.tests.Echo/Say takes Note; "
        "annotate it (request: Note, context)"
    )


def test_a_stream_where_one_message_is_declared_is_refused_and_the_reverse() -> None:
    with pytest.raises(DeclarationError, match=r"Collect takes Note but .*/Collect takes a stream"):
        bind(Echo, OneForAStream())  # type: ignore[arg-type]
    with pytest.raises(DeclarationError, match=r"Say returns Iterator\[Note\] but .* one message"):
        bind(Echo, AStreamForOne())  # type: ignore[arg-type]


def test_a_sync_stream_in_an_async_method_is_refused() -> None:
    with pytest.raises(DeclarationError) as caught:
        bind(Echo, SyncStreamInAsync())  # mypy refuses its def already
    assert str(caught.value) == (
        "SyncStreamInAsync.Repeat returns Iterator[Note] but it is async def, so its streams "
        "are AsyncIterator; annotate it -> AsyncIterator[Note]"
    )


def test_an_async_stream_that_does_not_yield_is_refused() -> None:
    with pytest.raises(DeclarationError) as caught:
        bind(Echo, ReturnsAStream())  # type: ignore[arg-type]
    assert str(caught.value) == (
        "ReturnsAStream.Repeat is an async def that does not yield, but "
        "transport.tests.Echo/Repeat answers a stream: yield each reply (an async generator)"
    )


def test_loose_and_async_annotations_that_can_serve_are_bound() -> None:
    assert not bind(Echo, Loose()).asynchronous
    assert bind(Echo, AsyncStreams()).asynchronous


def test_a_message_class_statement_run_again_is_the_same_message() -> None:
    # As a notebook cell or a docs page declares Note again: same module, same name.
    again = type("Note", (Message,), {"__module__": Note.__module__, "__annotations__": {}})
    again.__qualname__ = Note.__qualname__

    class TakesTheOldNote:
        def Say(self, request: Note) -> Note:
            return request

    TakesTheOldNote.Say.__annotations__ = {"request": again, "return": again}
    assert bind(Echo, TakesTheOldNote()).service is Echo
    with pytest.raises(DeclarationError, match=r"takes Other but"):
        TakesTheOldNote.Say.__annotations__ = {"request": Other, "return": again}
        bind(Echo, TakesTheOldNote())
