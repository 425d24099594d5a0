"""Service declarations: call kinds from hints, names, declaration errors, bind() and add_to()."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterable, Iterator
from typing import Any, Protocol

import grpc
import grpc.aio
import pytest

from tests.echo_service import AsyncEchoServer, Echo, EchoServer, Note
from transport import (
    Cardinality,
    Context,
    DeclarationError,
    Message,
    Method,
    Service,
    StreamStream,
    StreamUnary,
    TransportError,
    UnaryStream,
    UnaryUnary,
    bind,
    rpc,
)
from transport.testing import TestServer

Serve = Callable[..., TestServer]


def test_call_kinds_follow_from_the_hints() -> None:
    assert type(Echo.Say) is UnaryUnary
    assert type(Echo.Repeat) is UnaryStream
    assert type(Echo.Collect) is StreamUnary
    assert type(Echo.Chat) is StreamStream
    assert Echo.Chat.cardinality is Cardinality.STREAM_STREAM
    assert Echo.Chat.cardinality.client_streaming and Echo.Chat.cardinality.server_streaming
    assert not Echo.Repeat.cardinality.client_streaming
    assert (Echo.Say.request_type, Echo.Say.response_type) == (Note, Note)


def test_any_iterator_spelling_makes_a_stream() -> None:
    class Streams(Service, Protocol, name="t.Streams"):
        @rpc
        def A(self, requests: Iterable[Note]) -> Generator[Note, None, None]: ...

        @rpc
        def B(self, requests: AsyncIterator[Note]) -> AsyncGenerator[Note, None]: ...

        @rpc
        async def C(self, request: Note) -> Note: ...

        @rpc
        def D(self, request: Note) -> AsyncIterator[Note]: ...

    kinds = {name: type(method) for name, method in Streams.methods().items()}
    assert kinds == {"A": StreamStream, "B": StreamStream, "C": UnaryUnary, "D": UnaryStream}


def test_names_and_paths() -> None:
    assert Echo.service_name() == "transport.tests.Echo"
    assert Echo.Say.path == "/transport.tests.Echo/Say"
    assert list(Echo.methods()) == ["Say", "Repeat", "Collect", "Chat"]
    assert repr(Echo.Collect) == "<StreamUnary /transport.tests.Echo/Collect Note -> Note>"
    assert isinstance(Echo.Say, Method)


def test_rpc_name_sets_the_grpc_method_name(transport_serve: Serve) -> None:
    class Legacy(Service, Protocol, name="legacy.v1.Old"):
        @rpc(name="get-thing")
        def get_thing(self, request: Note) -> Note: ...

        @rpc(name="Stream_Things")
        def stream_things(self, request: Note) -> Iterator[Note]: ...

    assert Legacy.get_thing.name == "get-thing"
    assert Legacy.get_thing.path == "/legacy.v1.Old/get-thing"
    assert type(Legacy.stream_things) is UnaryStream
    assert list(Legacy.methods()) == ["get-thing", "Stream_Things"]

    class LegacyServer:
        def get_thing(self, request: Note, context: Context) -> Note:
            return Note(text=f"got {request.text}")

        def stream_things(self, request: Note, context: Context) -> Iterator[Note]:
            yield Note(text="one")

    server = transport_serve(bind(Legacy, LegacyServer()))
    assert server.client.call(Legacy.get_thing, Note(text="x")).text == "got x"
    assert [n.text for n in server.client.call(Legacy.stream_things, Note())] == ["one"]
    raw: Any = server.client.channel.unary_unary("/legacy.v1.Old/get-thing")
    assert raw(b'{"text": "raw"}', timeout=5) == b'{"text":"got raw"}'


def test_messages_may_be_declared_next_to_the_service_in_a_function() -> None:
    class Local(Message):
        value: int = 0

    class Scoped(Service, Protocol, name="t.Scoped"):
        @rpc
        def Get(self, request: Local) -> Local: ...

    assert Scoped.Get.request_type is Local


def test_dataclasses_are_message_classes_too() -> None:
    @dataclasses.dataclass
    class Point:
        x: int = 0

    class Points(Service, Protocol, name="t.Points"):
        @rpc
        def Move(self, request: Point) -> Point: ...

    assert Points.Move.request_codec.encode(Point(x=2)) == b'{"x":2}'


def test_a_derived_declaration_gets_its_own_handles() -> None:
    class Base(Service, Protocol, name="t.Base"):
        @rpc
        def Get(self, request: Note) -> Note: ...

    class Derived(Base, Protocol, name="t.Derived"):
        @rpc
        def Put(self, request: Note) -> Note: ...

    assert Base.Get.path == "/t.Base/Get"
    assert Derived.Get.path == "/t.Derived/Get"
    assert sorted(Derived.methods()) == ["Get", "Put"]
    assert list(Base.methods()) == ["Get"]


class Plain:
    """Not a message: msgspec would need a hook to turn JSON into it."""


@pytest.mark.parametrize(
    ("stub", "message"),
    [
        ("def M(self, request) -> Note: ...", r"must be declared as \(self, request: Type\)"),
        ("def M(self, request: Note): ...", r"with both hints present"),
        ("def M(self, a: Note, b: Note) -> Note: ...", r"must be declared as"),
        ("def M(self) -> Note: ...", r"must be declared as"),
        ("def M(self, request: Iterator) -> Note: ...", r"needs an item type"),
        ("def M(self, request: list[Note]) -> Note: ...", r"request type must be a message class"),
        ("def M(self, request: Note) -> Note | None: ...", r"response type must be a message"),
        ("def M(self, request: int) -> Note: ...", r"got <class 'int'>"),
        ("def M(self, request: Plain) -> Note: ...", r"\(a msgspec.Struct or a dataclass\)"),
        ("def M(self, request: Missing) -> Note: ...", r"name 'Missing' is not defined"),
    ],
)
def test_unusable_stubs_are_declaration_errors(stub: str, message: str) -> None:
    source = f"class S(Service, Protocol, name='t.S'):\n    @rpc\n    {stub}\n"
    namespace = {
        "Service": Service,
        "Protocol": Protocol,
        "rpc": rpc,
        "Note": Note,
        "Plain": Plain,
        "Iterator": Iterator,
    }
    with pytest.raises(DeclarationError, match=message) as caught:
        exec(source, namespace)
    assert "S.M" in str(caught.value)
    assert isinstance(caught.value, TransportError) and isinstance(caught.value, TypeError)


def test_a_field_type_msgspec_cannot_handle_is_a_declaration_error() -> None:
    class Odd(Message):
        either: list[int] | tuple[int, ...]

    with pytest.raises(DeclarationError, match=r"Odd.*cannot be used as a message type"):

        class S(Service, Protocol, name="t.Odd"):
            @rpc
            def M(self, request: Odd) -> Note: ...


def test_service_names_and_empty_services_are_checked() -> None:
    with pytest.raises(DeclarationError, match="declares no @rpc methods"):

        class Empty(Service, Protocol, name="t.Empty"):
            pass

    with pytest.raises(DeclarationError, match="full gRPC name without '/'"):

        class Slashed(Service, Protocol, name="t/Slashed"):
            @rpc
            def M(self, request: Note) -> Note: ...

    with pytest.raises(DeclarationError, match="non-empty method name"):
        rpc(name="")


# -- bind() and add_to() -----------------------------------------------------------------


def test_bind_refuses_an_implementation_that_mixes_sync_and_async() -> None:
    class Mixed:
        def Say(self, request: Note, context: Any) -> Note:
            return request

        async def Collect(self, requests: AsyncIterator[Note], context: Any) -> Note:
            return Note()

    with pytest.raises(DeclarationError, match="Mixed mixes async and sync methods"):
        bind(Echo, Mixed())


def test_add_to_refuses_the_wrong_kind_of_server() -> None:
    sync_server = grpc.server(thread_pool=None)  # type: ignore[arg-type]
    with pytest.raises(DeclarationError, match=r"AsyncEchoServer must be served on grpc.aio"):
        bind(Echo, AsyncEchoServer()).add_to(sync_server)


@pytest.mark.anyio
async def test_add_to_refuses_a_sync_implementation_on_an_aio_server() -> None:
    aio_server = grpc.aio.server()
    with pytest.raises(DeclarationError, match=r"EchoServer must be served on grpc.server"):
        bind(Echo, EchoServer()).add_to(aio_server)
    await aio_server.stop(grace=None)


def test_bind_checks_its_arguments() -> None:
    with pytest.raises(DeclarationError, match="is not a Service declaration"):
        bind(Note, EchoServer())

    class NotCallable:
        Say = "hello"

    with pytest.raises(DeclarationError, match=r"NotCallable.Say is not callable"):
        bind(Echo, NotCallable())  # type: ignore[arg-type]

    class NoArguments:
        def Say(self) -> Note:
            return Note()

    with pytest.raises(DeclarationError, match=r"accept \(request\) or \(request, context\)"):
        bind(Echo, NoArguments())  # type: ignore[arg-type]


def test_a_binding_names_what_it_binds() -> None:
    binding = bind(Echo, EchoServer())
    assert repr(binding) == "<Binding transport.tests.Echo -> EchoServer>"
    assert not binding.asynchronous
    assert bind(Echo, AsyncEchoServer()).asynchronous
