"""Mistakes caught when a service is declared or bound, each with a message that names the fix."""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated, Any, Protocol

import numpy as np
import pytest

from tests.echo_service import Echo, EchoServer, Note
from transport import (
    Context,
    DeclarationError,
    DeclarationWarning,
    Message,
    Number,
    Service,
    bind,
    rpc,
)


class Point:
    """A plain class: not a message, not a type msgspec can carry."""

    def __init__(self, x: int) -> None:
        self.x = x


class Located(Message):
    name: str = ""
    where: Point | None = None


class Deep(Message):
    items: list[dict[str, Located]] = []


@dataclasses.dataclass
class Shape:
    corners: list[Point]


def test_a_plain_class_as_a_field_type_names_message_field_and_supported_types() -> None:
    with pytest.raises(DeclarationError) as caught:

        class Places(Service, Protocol, name="t.Places"):
            @rpc
            def Find(self, request: Note) -> Located: ...

    message = str(caught.value)
    assert "Places.Find: field Located.where has type Point" in message
    assert "subclass transport.Message" in message
    assert "str, int, float, bool" in message


def test_field_types_are_checked_at_any_depth_and_in_dataclasses() -> None:
    with pytest.raises(DeclarationError, match=r"field Located\.where has type Point"):

        class Nested(Service, Protocol, name="t.Nested"):
            @rpc
            def Put(self, request: Deep) -> Note: ...

    with pytest.raises(DeclarationError, match=r"field Shape\.corners has type Point"):

        class Drawn(Service, Protocol, name="t.Drawn"):
            @rpc
            def Draw(self, request: Shape) -> Note: ...


class Flags(Message):
    by_flag: dict[bool, str] = {}


def test_a_map_with_bool_keys_is_refused_where_the_method_is_declared() -> None:
    with pytest.raises(DeclarationError) as caught:

        class Flagged(Service, Protocol, name="t.Flagged"):
            @rpc
            def Set(self, request: Flags) -> Note: ...

    assert str(caught.value).endswith(
        "Flagged.Set: field Flags.by_flag is a map with bool keys, which the JSON wire cannot "
        "carry; use str or int keys"
    )


class Tree(Message):
    values: np.ndarray | None = None
    children: list[Tree] = []


def test_supported_custom_and_recursive_fields_pass() -> None:
    class Forest(Service, Protocol, name="t.Forest"):
        @rpc
        def Grow(self, request: Tree) -> Tree: ...

    assert Forest.Grow.request_type is Tree


def test_a_stub_without_rpc_is_named() -> None:
    with pytest.raises(DeclarationError) as caught:

        class Half(Service, Protocol, name="t.Half"):
            @rpc
            def Get(self, request: Note) -> Note: ...

            def Put(self, request: Note) -> Note: ...

    assert str(caught.value) == (
        "test_a_stub_without_rpc_is_named.<locals>.Half: Put is not decorated with @rpc; "
        "write @rpc on the line above each method of a service declaration"
    )


def test_a_declaration_with_no_rpc_at_all_names_its_stubs() -> None:
    with pytest.raises(DeclarationError, match=r"Bare: Get, Put are not decorated with @rpc"):

        class Bare(Service, name="t.Bare"):
            def Get(self, request: Note) -> Note:
                return request

            def Put(self, request: Note) -> Note:
                return request


def test_a_list_return_suggests_a_stream() -> None:
    with pytest.raises(DeclarationError) as caught:

        class Listing(Service, Protocol, name="t.Listing"):
            @rpc
            def All(self, request: Note) -> list[Note]: ...

    assert "declare a stream: Iterator[Note] (AsyncIterator[Note] for async def)" in str(
        caught.value
    )


def test_a_declaration_without_protocol_warns_why_it_is_needed() -> None:
    with pytest.warns(DeclarationWarning) as warned:

        class Bare(Service, name="t.Bare"):
            @rpc
            def Get(self, request: Note) -> Note: ...  # type: ignore[empty-body]

    (warning,) = warned
    assert "list Protocol among the bases" in str(warning.message)
    assert "type checkers accept the `...` bodies" in str(warning.message)
    assert warning.filename == __file__  # points at the class statement
    assert Bare.methods()["Get"].path == "/t.Bare/Get"  # it still works


def test_an_implementation_subclassing_its_declaration_is_not_a_declaration() -> None:
    class Implemented(Echo):
        def Say(self, request: Note, context: Context) -> Note:  # type: ignore[override]
            return request

        def helper(self) -> None: ...

    binding = bind(Echo, Implemented())  # type: ignore[abstract]
    assert binding.service is Echo


# -- bind() ------------------------------------------------------------------------------


def test_bind_refuses_a_class_and_shows_the_call() -> None:
    with pytest.raises(DeclarationError) as caught:
        bind(Echo, EchoServer)
    assert str(caught.value) == (
        "bind() got the class EchoServer, not an instance of it; pass an instance: "
        "bind(Echo, EchoServer())"
    )


def test_bind_refuses_an_object_with_none_of_the_methods() -> None:
    class Unrelated:
        def run(self) -> None: ...

    with pytest.raises(DeclarationError) as caught:
        bind(Echo, Unrelated())
    assert str(caught.value) == (
        "Unrelated implements none of the methods of transport.tests.Echo "
        "(Say, Repeat, Collect, Chat); bind an object with methods of those names"
    )


@pytest.mark.parametrize("typo", ["say", "SAY", "say_", "Sayy"])
def test_a_name_close_to_a_declared_method_suggests_it(typo: str) -> None:
    implementation: Any = type("Typo", (), {typo: lambda self, request: request})()
    with pytest.raises(DeclarationError) as caught:
        bind(Echo, implementation)
    assert str(caught.value) == (
        f"Typo has no method Say of transport.tests.Echo, but has {typo}: did you mean `Say`? "
        "Implementation methods are matched by their exact name"
    )


def test_methods_left_unimplemented_are_logged_once_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class OnlySay:
        def Say(self, request: Note) -> Note:
            return request

    with caplog.at_level(logging.WARNING, logger="transport.server"):
        bind(Echo, OnlySay())
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "OnlySay leaves Repeat, Collect, Chat of transport.tests.Echo unimplemented "
        "(calls to them answer UNIMPLEMENTED)"
    )


def test_a_complete_implementation_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="transport"):
        bind(Echo, EchoServer())
    assert caplog.records == []


def test_stream_request_lists_get_the_same_hint() -> None:
    with pytest.raises(DeclarationError, match=r"declare a stream: Iterator\[Note\]"):

        class Upload(Service, Protocol, name="t.Upload"):
            @rpc
            def Put(self, requests: list[Note]) -> Note: ...


class Numbered(Message):
    """A message numbered for protobuf."""

    text: Annotated[str, Number(1)] = ""


def test_a_numbered_request_with_a_json_only_response_is_refused() -> None:
    with pytest.raises(DeclarationError) as caught:

        class Halves(Service, Protocol, name="t.Halves"):
            @rpc
            def Put(self, request: Numbered) -> Note: ...

    assert str(caught.value) == (
        "test_a_numbered_request_with_a_json_only_response_is_refused.<locals>.Halves.Put: "
        "Note.text has no protobuf field number, but the request Numbered is numbered, so the "
        "method could only speak JSON; number every field of Note (Annotated[..., Number(n)]), "
        "or remove every Number from Numbered to keep the method JSON-only"
    )


def test_a_half_numbered_message_is_refused_where_the_method_is_declared() -> None:
    class Half(Message):
        text: Annotated[str, Number(1)] = ""
        count: int = 0

    with pytest.raises(DeclarationError) as caught:

        class Halved(Service, Protocol, name="t.Halved"):
            @rpc
            def Put(self, request: Note) -> Half: ...

    where = "test_a_half_numbered_message_is_refused_where_the_method_is_declared.<locals>"
    assert str(caught.value) == (
        f"{where}.Halved.Put: {where}.Half.count: no protobuf field number, but "
        f"{where}.Half.text has one; declare it as Annotated[..., Number(n)], or remove every "
        f"Number from {where}.Half to keep it JSON-only"
    )


class Both(Service, Protocol, name="t.Both"):
    """A numbered method beside a JSON-only one: each speaks what it can."""

    @rpc
    def Post(self, request: Numbered) -> Numbered: ...

    @rpc
    def Say(self, request: Note) -> Note: ...


class BothServer:
    def Post(self, request: Numbered) -> Numbered:
        return request

    def Say(self, request: Note) -> Note:
        return request


def test_the_protobuf_wire_of_a_json_only_service_is_refused_at_bind() -> None:
    with pytest.raises(DeclarationError) as caught:
        bind(Echo, EchoServer(), wire="protobuf")
    assert str(caught.value) == (
        "bind(..., wire='protobuf'): transport.tests.Echo is JSON-only (its messages have no "
        "protobuf field numbers); number every field of its messages (Annotated[..., "
        "Number(n)]), or bind with wire='json'"
    )
    assert bind(Echo, EchoServer(), wire="json").wire == "json"
    assert bind(Both, BothServer(), wire="protobuf").wire == "protobuf"
    later = bind(Echo, EchoServer())  # as `run --wire` and `serve --wire` set it
    with pytest.raises(DeclarationError, match=r"transport\.tests\.Echo is JSON-only"):
        later.wire = "protobuf"
    assert later.wire == "json"
