"""A user's numbered service, served by ``python -m transport run tests.call_app:binding``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

from transport import Context, Message, RpcError, Service, StatusCode, bind, rpc
from transport.encoding.protobuf import Number
from transport.encoding.scalars import Int32


class Word(Message):
    text: Annotated[str, Number(1)] = ""
    count: Annotated[Int32, Number(2)] = 0


class Words(Service, Protocol, name="words.v1.Words"):
    @rpc
    def Upper(self, request: Word) -> Word: ...

    @rpc
    def Split(self, request: Word) -> Iterator[Word]: ...

    @rpc
    def Join(self, requests: Iterator[Word]) -> Word: ...

    @rpc
    def Echo(self, requests: Iterator[Word]) -> Iterator[Word]: ...


class WordsServer:
    def Upper(self, request: Word, context: Context) -> Word:
        if not request.text:
            raise RpcError(StatusCode.INVALID_ARGUMENT, "no text to upper-case")
        who = str(context.metadata_value("x-who") or "")
        return Word(text=request.text.upper() + (f" for {who}" if who else ""), count=1)

    def Split(self, request: Word) -> Iterator[Word]:
        for index, part in enumerate(request.text.split()):
            yield Word(text=part, count=index)

    def Join(self, requests: Iterator[Word]) -> Word:
        parts = [word.text for word in requests]
        return Word(text=" ".join(parts), count=len(parts))

    def Echo(self, requests: Iterator[Word]) -> Iterator[Word]:
        for word in requests:
            yield Word(text=word.text, count=word.count + 1)


binding = bind(Words, WordsServer())
