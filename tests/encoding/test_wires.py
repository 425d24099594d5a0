"""Both wires on one declaration: the server answers each call in the wire it was spoken in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Protocol

import grpc
import pytest

from transport import RpcError, StatusCode, bind, rpc
from transport.encoding.json_codec import Message
from transport.encoding.protobuf import Number, ProtobufCodec
from transport.service import Service
from transport.testing import serve, serve_async


class Note(Message):
    """A numbered message."""

    text: Annotated[str, Number(1)] = ""
    n: Annotated[int, Number(2)] = 0


class Plain(Message):
    """A message without protobuf numbers: JSON only."""

    text: str = ""


class Notes(Service, Protocol, name="wires.Notes"):
    """Every call kind on numbered messages, and one JSON-only method."""

    @rpc
    def Echo(self, request: Note) -> Note: ...

    @rpc
    def Count(self, request: Note) -> Iterator[Note]: ...

    @rpc
    def Join(self, requests: Iterator[Note]) -> Note: ...

    @rpc
    def Chat(self, requests: Iterator[Note]) -> Iterator[Note]: ...

    @rpc
    def Greet(self, request: Note) -> Iterator[Note]: ...

    @rpc
    def Lead(self, requests: Iterator[Note]) -> Iterator[Note]: ...

    @rpc
    def Plain(self, request: Plain) -> Plain: ...


class NotesImpl:
    def Echo(self, request: Note) -> Note:
        if request.text == "fail":
            raise RpcError(StatusCode.FAILED_PRECONDITION, "asked to fail", {"why": ["asked", 1]})
        return Note(text=request.text.upper(), n=request.n + 1)

    def Count(self, request: Note) -> Iterator[Note]:
        for i in range(request.n):
            yield Note(text=request.text, n=i)

    def Join(self, requests: Iterator[Note]) -> Note:
        notes = list(requests)
        return Note(text="".join(note.text for note in notes), n=len(notes))

    def Chat(self, requests: Iterator[Note]) -> Iterator[Note]:
        for note in requests:
            yield Note(text=note.text * 2, n=note.n)

    def Greet(self, request: Note) -> Iterator[Note]:
        yield Note(text="hello")

    def Lead(self, requests: Iterator[Note]) -> Iterator[Note]:
        yield Note(text="first")  # before any request arrives
        yield from requests

    def Plain(self, request: Plain) -> Plain:
        return Plain(text=request.text + "!")


class AsyncNotesImpl:
    async def Echo(self, request: Note) -> Note:
        return NotesImpl().Echo(request)

    async def Count(self, request: Note) -> AsyncIterator[Note]:
        for note in NotesImpl().Count(request):
            yield note

    async def Join(self, requests: AsyncIterator[Note]) -> Note:
        notes = [note async for note in requests]
        return Note(text="".join(note.text for note in notes), n=len(notes))

    async def Chat(self, requests: AsyncIterator[Note]) -> AsyncIterator[Note]:
        async for note in requests:
            yield Note(text=note.text * 2, n=note.n)

    async def Greet(self, request: Note) -> AsyncIterator[Note]:
        yield Note(text="hello")

    async def Plain(self, request: Plain) -> Plain:
        return Plain(text=request.text + "!")


NOTE = ProtobufCodec(Note)
WIRES = ["json", "protobuf"]


@pytest.mark.parametrize("wire", WIRES)
def test_every_call_kind_over_each_wire_sync(wire: str) -> None:
    with serve(bind(Notes, NotesImpl()), wire=wire) as server:
        client = server.client
        assert client.call(Notes.Echo, Note(text="a", n=1)) == Note(text="A", n=2)
        assert [n.n for n in client.call(Notes.Count, Note(text="c", n=3))] == [0, 1, 2]
        assert client.call(Notes.Join, iter([Note(text="x"), Note(text="y")])) == Note(
            text="xy", n=2
        )
        assert client.call(Notes.Join, iter([])) == Note(text="", n=0)
        chat = list(client.call(Notes.Chat, iter([Note(text="p", n=7)])))
        assert chat == [Note(text="pp", n=7)]
        with client.open(Notes.Chat) as stream:
            stream.send(Note(text="q"))
            assert next(stream) == Note(text="qq")
            stream.done_writing()
        # A method without numbers speaks JSON whatever the client prefers.
        assert client.call(Notes.Plain, Plain(text="hi")) == Plain(text="hi!")


@pytest.mark.parametrize("wire", WIRES)
def test_every_call_kind_over_each_wire_async(wire: str) -> None:
    async def main() -> None:
        async with serve_async(bind(Notes, AsyncNotesImpl()), wire=wire) as server:
            client = server.client
            assert await client.call(Notes.Echo, Note(text="a", n=1)) == Note(text="A", n=2)
            counted = [n.n async for n in client.call(Notes.Count, Note(n=2))]
            assert counted == [0, 1]
            joined = await client.call(Notes.Join, [Note(text="x"), Note(text="y")])
            assert joined == Note(text="xy", n=2)
            stream = client.open(Notes.Chat)
            await stream.write(Note(text="q", n=3))
            assert await stream.read() == Note(text="qq", n=3)
            await stream.done_writing()
            assert await client.call(Notes.Plain, Plain(text="hi")) == Plain(text="hi!")

    asyncio.run(main())


def _raw(channel: grpc.Channel, path: str) -> Any:
    return channel.unary_unary(path)


def test_the_answer_comes_back_in_the_wire_of_the_request() -> None:
    with serve(bind(Notes, NotesImpl())) as server, grpc.insecure_channel(server.address) as ch:
        echo = _raw(ch, "/wires.Notes/Echo")
        assert NOTE.decode(echo(NOTE.encode(Note(text="b", n=4)))) == Note(text="B", n=5)
        assert echo(b'{"text":"b","n":4}') == b'{"text":"B","n":5}'
        # An empty protobuf message is 0 bytes: all defaults.
        assert NOTE.decode(echo(b"")) == Note(text="", n=1)
        with pytest.raises(grpc.RpcError) as caught:  # announced JSON: "" is not JSON
            echo(b"", metadata=(("transport-wire", "json"),))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_an_announcement_overrides_the_first_byte() -> None:
    with serve(bind(Notes, NotesImpl())) as server, grpc.insecure_channel(server.address) as ch:
        echo = _raw(ch, "/wires.Notes/Echo")
        with pytest.raises(grpc.RpcError) as caught:
            echo(b'{"text":"b"}', metadata=(("transport-wire", "protobuf"),))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as caught:
            echo(b"", metadata=(("transport-wire", "xml"),))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "transport-wire must be 'json' or 'protobuf'" in str(caught.value.details())


def test_mixing_wires_in_one_call_is_invalid_argument() -> None:
    with serve(bind(Notes, NotesImpl())) as server, grpc.insecure_channel(server.address) as ch:
        join: Any = ch.stream_unary("/wires.Notes/Join")
        with pytest.raises(grpc.RpcError) as caught:
            join(iter([NOTE.encode(Note(text="x")), b'{"text":"y"}']))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "a json message in a call that speaks protobuf" in str(caught.value.details())


def test_protobuf_to_a_method_without_numbers_is_invalid_argument() -> None:
    with serve(bind(Notes, NotesImpl())) as server, grpc.insecure_channel(server.address) as ch:
        plain = _raw(ch, "/wires.Notes/Plain")
        with pytest.raises(grpc.RpcError) as caught:
            plain(b"\x0a\x01a", metadata=(("transport-wire", "protobuf"),))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "speaks JSON only" in str(caught.value.details())
        with pytest.raises(grpc.RpcError) as caught:
            plain(b"\x0a\x01a")
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "speaks JSON only" in str(caught.value.details())


@pytest.mark.parametrize("default", WIRES)
def test_a_server_first_stream_speaks_the_servers_default(default: str) -> None:
    binding = bind(Notes, NotesImpl(), wire=default)
    with serve(binding) as server, grpc.insecure_channel(server.address) as ch:
        greet: Any = ch.unary_stream("/wires.Notes/Greet")
        chat: Any = ch.stream_stream("/wires.Notes/Chat")
        (first,) = list(greet(b"{}"))  # the request's wire wins over the default
        assert first == b'{"text":"hello"}'
        assert list(chat(iter([]))) == []
    # An empty request stream answers in the default wire.
    with (
        serve(bind(Notes, NotesImpl(), wire=default)) as server,
        grpc.insecure_channel(server.address) as ch,
    ):
        join: Any = ch.stream_unary("/wires.Notes/Join")
        answer = join(iter([]))
    assert answer == (b"{}" if default == "json" else b"")


@pytest.mark.parametrize("default", WIRES)
@pytest.mark.parametrize("wire", WIRES)
def test_a_client_of_either_wire_talks_to_a_server_that_speaks_first(
    default: str, wire: str
) -> None:
    with (
        serve(bind(Notes, NotesImpl(), wire=default), wire=wire) as server,
        server.client.open(Notes.Lead) as stream,
    ):
        assert next(stream) == Note(text="first")
        stream.send(Note(text="then", n=2))
        assert next(stream) == Note(text="then", n=2)
        stream.done_writing()
        assert list(stream) == []


def test_a_bad_wire_name_is_refused_where_it_is_given() -> None:
    with pytest.raises(ValueError, match="wire must be 'json' or 'protobuf'"):
        bind(Notes, NotesImpl(), wire="xml")
    with pytest.raises(ValueError, match="wire must be 'json' or 'protobuf'"):
        from transport import Client

        Client.connect("127.0.0.1:1", wire="binary")


@pytest.mark.parametrize("wire", WIRES)
def test_error_details_travel_in_both_trailers(wire: str) -> None:
    from grpc_status import rpc_status  # type: ignore[import-untyped]

    with serve(bind(Notes, NotesImpl()), wire=wire) as server:
        with pytest.raises(RpcError) as caught:
            server.client.call(Notes.Echo, Note(text="fail"))
        assert caught.value.code is StatusCode.FAILED_PRECONDITION
        assert caught.value.details == {"why": ["asked", 1]}
        assert caught.value.trailing_metadata == ()
        with grpc.insecure_channel(server.address) as ch:
            echo = _raw(ch, "/wires.Notes/Echo")
            with pytest.raises(grpc.RpcError) as raw:
                echo(NOTE.encode(Note(text="fail")))
    status = rpc_status.from_call(raw.value)
    assert status is not None
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert status.message == "asked to fail"
    from google.protobuf import struct_pb2

    (detail,) = status.details
    assert detail.type_url == "type.googleapis.com/google.protobuf.Value"
    value = struct_pb2.Value()
    detail.Unpack(value)
    from google.protobuf.json_format import MessageToDict

    assert MessageToDict(value) == {"why": ["asked", 1.0]}


def test_the_client_reads_details_from_the_standard_trailer_alone() -> None:
    from google.protobuf import any_pb2, struct_pb2
    from google.rpc import status_pb2  # type: ignore[import-untyped]

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        value = struct_pb2.Value()
        value.struct_value.update({"field": "text", "reason": "empty"})
        detail = any_pb2.Any()
        detail.Pack(value)
        status = status_pb2.Status(code=3, message="bad text", details=[detail])
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad text")
        raise AssertionError("unreachable")

    class Standard:
        def add_to(self, server: grpc.Server | grpc.aio.Server) -> None:
            handler: Any = grpc.unary_unary_rpc_method_handler(fail)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler("wires.Notes", {"Echo": handler}),)
            )

    with serve(Standard(), wire="protobuf") as server, pytest.raises(RpcError) as caught:
        server.client.call(Notes.Echo, Note(text=""))
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert caught.value.details == {"field": "text", "reason": "empty"}


@pytest.mark.parametrize("trailer", [b"\xff\xff", b"\x1a\x05\x0a\x03abc", b"\x1a" * 3])
def test_a_broken_standard_trailer_leaves_the_details_out(trailer: bytes) -> None:
    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.set_trailing_metadata((("grpc-status-details-bin", trailer),))
        context.abort(grpc.StatusCode.ABORTED, "broken on purpose")
        raise AssertionError("unreachable")

    class Broken:
        def add_to(self, server: grpc.Server | grpc.aio.Server) -> None:
            handler: Any = grpc.unary_unary_rpc_method_handler(fail)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler("wires.Notes", {"Echo": handler}),)
            )

    with serve(Broken()) as server, pytest.raises(RpcError) as caught:
        server.client.call(Notes.Echo, Note())
    assert caught.value.code is StatusCode.ABORTED
    assert caught.value.details is None


def test_details_too_deep_for_a_value_still_travel_as_json() -> None:
    deep: Any = []
    for _ in range(500):  # JSON writes it; a protobuf Value is too deep to build here
        deep = [deep]

    class Deep:
        def Echo(self, request: Note) -> Note:
            raise RpcError(StatusCode.ABORTED, "deep", deep)

    with serve(bind(Notes, Deep())) as server, pytest.raises(RpcError) as caught:
        server.client.call(Notes.Echo, Note())
    assert caught.value.code is StatusCode.ABORTED
    assert caught.value.details == deep
