"""Usage examples whose types mypy --strict must infer exactly (checked by test_typing.py).

Nothing here runs. ``assert_type`` fails the check if a type regresses (to
``Any`` included), and each ``# type: ignore[...]`` marks a line that must stay
an error: ``--strict`` reports an ignore that is no longer needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from transport import (
    AsyncBidiStream,
    AsyncClient,
    AsyncContext,
    AsyncResponseStream,
    BidiStream,
    Binding,
    CallInfo,
    Client,
    Context,
    Message,
    ResponseStream,
    Service,
    StreamStream,
    StreamUnary,
    UnaryStream,
    UnaryUnary,
    bind,
    rpc,
)

if TYPE_CHECKING:
    from typing_extensions import assert_type


class Question(Message):
    text: str = ""


class Answer(Message):
    text: str = ""
    score: float = 0.0


class Oracle(Service, Protocol, name="typing.Oracle"):
    @rpc
    def Ask(self, request: Question) -> Answer: ...

    @rpc
    def Stream(self, request: Question) -> Iterator[Answer]: ...

    @rpc
    def Gather(self, requests: Iterator[Question]) -> Answer: ...

    @rpc
    def Converse(self, requests: Iterator[Question]) -> Iterator[Answer]: ...

    @rpc(name="ask-by-name")
    def AskByName(self, request: Question) -> Answer: ...

    @rpc
    async def AskAsync(self, request: Question) -> Answer: ...

    @rpc
    def StreamAsync(self, request: Question) -> AsyncIterator[Answer]: ...

    @rpc
    def ConverseAsync(self, requests: AsyncIterator[Question]) -> AsyncIterator[Answer]: ...


def handles() -> None:
    assert_type(Oracle.Ask, UnaryUnary[Question, Answer])
    assert_type(Oracle.Stream, UnaryStream[Question, Answer])
    assert_type(Oracle.Gather, StreamUnary[Question, Answer])
    assert_type(Oracle.Converse, StreamStream[Question, Answer])
    assert_type(Oracle.AskByName, UnaryUnary[Question, Answer])
    assert_type(Oracle.AskAsync, UnaryUnary[Question, Answer])
    assert_type(Oracle.StreamAsync, UnaryStream[Question, Answer])
    assert_type(Oracle.ConverseAsync, StreamStream[Question, Answer])


def sync_calls(client: Client, questions: list[Question]) -> None:
    assert_type(client.call(Oracle.Ask, Question()), Answer)
    assert_type(client.call(Oracle.AskByName, Question()), Answer)
    stream = client.call(Oracle.Stream, Question(), timeout=1.0, metadata=[("k", "v")])
    assert_type(stream, ResponseStream[Answer])
    for answer in stream:
        assert_type(answer, Answer)
    assert_type(next(stream), Answer)
    assert_type(client.call(Oracle.Gather, iter(questions)), Answer)
    assert_type(client.call(Oracle.Gather, questions), Answer)
    replies = client.call(Oracle.Converse, questions)
    assert_type(replies, ResponseStream[Answer])
    assert_type([reply.score for reply in replies], list[float])
    assert_type(client.with_call(Oracle.Ask, Question()), tuple[Answer, CallInfo])
    assert_type(client.with_call(Oracle.Gather, questions), tuple[Answer, CallInfo])
    with client.open(Oracle.Converse) as chat:
        assert_type(chat, BidiStream[Question, Answer])
        chat.write(Question())
        assert_type(next(chat), Answer)
    with client.call(Oracle.Stream, Question()) as scoped:
        assert_type(scoped, ResponseStream[Answer])


async def async_calls(client: AsyncClient, questions: list[Question]) -> None:
    assert_type(await client.call(Oracle.Ask, Question()), Answer)
    stream = client.call(Oracle.Stream, Question())
    assert_type(stream, AsyncResponseStream[Answer])
    async for answer in stream:
        assert_type(answer, Answer)
    assert_type(await stream.read(), Answer | None)
    assert_type(await client.call(Oracle.Gather, questions), Answer)
    async for reply in client.call(Oracle.Converse, questions):
        assert_type(reply, Answer)
    assert_type(await client.with_call(Oracle.Ask, Question()), tuple[Answer, CallInfo])
    assert_type(await client.with_call(Oracle.Gather, questions), tuple[Answer, CallInfo])
    async with client.open(Oracle.Converse) as chat:
        assert_type(chat, AsyncBidiStream[Question, Answer])
        await chat.write(Question())
        assert_type(await chat.read(), Answer | None)


def wrong_requests(client: Client, aclient: AsyncClient) -> None:
    # mypy words a request of the wrong type as "Cannot infer value of type
    # parameter Req" (code misc): the handle and the request disagree on it.
    client.call(Oracle.Ask, Answer())  # type: ignore[misc]
    client.call(Oracle.Ask, "text")  # type: ignore[misc]
    client.call(Oracle.Gather, [Answer()])  # type: ignore[misc]
    client.call(Oracle.Gather, Question())  # type: ignore[call-overload]
    client.with_call(Oracle.Stream, Question())  # type: ignore[call-overload]
    client.open(Oracle.Ask)  # type: ignore[arg-type]
    aclient.call(Oracle.Ask, Answer())  # type: ignore[misc]
    with client.open(Oracle.Converse) as chat:
        chat.write(Answer())  # type: ignore[arg-type]


def wrong_results(client: Client) -> None:
    text: int = client.call(Oracle.Ask, Question()).text  # type: ignore[assignment]
    missing = client.call(Oracle.Ask, Question()).missing  # type: ignore[attr-defined]
    del text, missing


def codecs_keep_the_contract() -> None:
    """Both codecs are a ``Codec`` of their message type (mypy checks the assignment)."""
    from transport import JsonCodec, ProtobufCodec
    from transport.encoding import Codec

    json_wire: Codec[Question] = JsonCodec(Question)
    protobuf_wire: Codec[Question] = ProtobufCodec(Question)
    assert isinstance(json_wire, Codec) and isinstance(protobuf_wire, Codec)


# -- bind(): each implementation method is checked against its handle -----------------------
# (transport.mypy_plugin, enabled in pyproject.toml)


class Replies:
    """Every valid form at once: with and without the context, streams, a left-out method."""

    def Ask(self, request: Question, context: Context) -> Answer:
        return Answer(text=request.text)

    def Stream(self, request: Question) -> Iterator[Answer]:
        yield Answer()

    def Gather(self, requests: Iterator[Question], context: Context) -> Answer:
        return Answer(text=" ".join(question.text for question in requests))

    def Converse(self, requests: Iterator[Question]) -> list[Answer]:
        return [Answer(text=question.text) for question in requests]

    def AskByName(self, request: object, context: Any) -> Answer:
        return Answer()


class AsyncReplies:
    async def Ask(self, request: Question) -> Answer:
        return Answer()

    async def Stream(self, request: Question, context: AsyncContext) -> AsyncIterator[Answer]:
        yield Answer()

    async def ConverseAsync(self, requests: AsyncIterator[Question]) -> AsyncIterator[Answer]:
        async for question in requests:
            yield Answer(text=question.text)


class Untyped:
    def Ask(self, request, context):  # type: ignore[no-untyped-def]
        return Answer()


class WrongReply:
    def Ask(self, request: Question, context: Context) -> dict[str, str]:
        return {"text": request.text}


class WrongRequest:
    def Ask(self, request: Answer) -> Answer:
        return request


def bindings() -> None:
    assert_type(bind(Oracle, Replies()), Binding)
    bind(Oracle, AsyncReplies())
    bind(Oracle, Untyped())
    bind(Oracle, WrongReply())  # type: ignore[arg-type]
    bind(Oracle, WrongRequest())  # type: ignore[arg-type]
    Binding(Oracle, WrongReply())  # type: ignore[arg-type]
