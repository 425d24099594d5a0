"""Field numbers on declarations: what is refused, and JSON-only declarations unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Protocol

import msgspec
import pytest

from transport import (
    DeclarationError,
    Empty,
    JsonCodec,
    Message,
    Number,
    ProtobufCodec,
    ProtoEnum,
    Service,
    UInt32,
    UInt32Value,
    rpc,
)
from transport.encoding.protobuf import is_numbered
from transport.encoding.scalars import Kind
from transport.proto import proto_file


class Plain(Message):
    """A JSON-only message: no numbers."""

    source_path: str = ""
    count: int = 0


class Numbered(Message):
    """The same message, numbered."""

    source_path: Annotated[str, Number(1)] = ""
    count: Annotated[int, Number(2)] = 0


def test_json_ignores_the_numbers() -> None:
    plain, numbered = Plain(source_path="a", count=2), Numbered(source_path="a", count=2)
    assert JsonCodec(Numbered).encode(numbered) == JsonCodec(Plain).encode(plain)
    assert JsonCodec(Numbered).decode(b'{"sourcePath":"a","count":2}') == numbered
    assert is_numbered(Numbered) and not is_numbered(Plain) and not is_numbered(int)


def test_a_json_only_message_has_no_protobuf_codec() -> None:
    with pytest.raises(DeclarationError, match=r"Plain\.source_path: no protobuf field number"):
        ProtobufCodec(Plain)


def _declare(annotation: Any, default: Any = msgspec.NODEFAULT) -> type[Any]:
    namespace: dict[str, Any] = {"__annotations__": {"field": annotation}}
    if default is not msgspec.NODEFAULT:
        namespace["field"] = default
    return type("Bad", (Message,), namespace)


_OUT_OF_RANGE = "the field number {} is out of range; use a number from 1 to 536,870,911"
_RESERVED = (
    "the field number {} is reserved (19000-19999 belong to the protobuf implementation); "
    "use a number from 1 to 18999 or 20000 to 536,870,911"
)


@pytest.mark.parametrize(
    ("annotation", "default", "error"),
    [
        (Annotated[int, Number(0)], 0, _OUT_OF_RANGE.format(0)),
        (Annotated[int, Number(-1)], 0, _OUT_OF_RANGE.format(-1)),
        (Annotated[int, Number(2**29)], 0, _OUT_OF_RANGE.format(536870912)),
        (Annotated[int, Number(19000)], 0, _RESERVED.format(19000)),
        (Annotated[int, Number(19999)], 0, _RESERVED.format(19999)),
        (
            Annotated[int, Number(True)],
            0,
            "the field number True is not an int; use Number(n) with n from 1 to 536,870,911",
        ),
        (
            Annotated[int, Number(2)],
            5,
            "default must be the zero value 0 of a numbered field, not 5 (protobuf cannot tell "
            "an absent field from its zero value); default to 0, or declare X | None = None "
            "for explicit presence",
        ),
        (Annotated[int | str, Number(1)], 0, "protobuf has no union type"),
        (Annotated[list[list[int]], Number(1)], [], "no nested repeated or map fields"),
        (Annotated[list[int] | None, Number(1)], None, "a repeated or map field cannot be None"),
        (Annotated[dict[float, int], Number(1)], {}, "a map key is an integer, bool or str"),
        (Annotated[str, Kind("int32"), Number(1)], "", "int32 is not a protobuf type of str"),
        (Annotated[int, Kind("double"), Number(1)], 0, "double is not a protobuf type of int"),
        (Annotated[set[int], Number(1)], set(), "has no protobuf type"),
        (Annotated[list[int], Number(1, oneof="body")], [], "a oneof member cannot be repeated"),
    ],
)
def test_a_bad_declaration_names_the_message_and_the_field(
    annotation: Any, default: Any, error: str
) -> None:
    with pytest.raises(DeclarationError, match=r"Bad\.field: ") as caught:
        ProtobufCodec(_declare(annotation, default))
    assert error in str(caught.value)


def test_two_fields_of_one_proto_name_are_refused() -> None:
    class Renamed(Message):
        first: Annotated[str, Number(1)] = ""
        second: Annotated[str, Number(2, name="first")] = ""

    with pytest.raises(DeclarationError, match=r"Renamed.second: two fields are named first"):
        ProtobufCodec(Renamed)


def test_a_duplicate_number_names_both_fields() -> None:
    class Twice(Message):
        first: Annotated[str, Number(3)] = ""
        second: Annotated[str, Number(3)] = ""

    with pytest.raises(DeclarationError, match=r"Twice.second: field number 3 is already used"):
        ProtobufCodec(Twice)


def test_an_unnumbered_nested_message_is_refused_where_it_is_used() -> None:
    class Outer(Message):
        inner: Annotated[Plain | None, Number(1)] = None

    with pytest.raises(DeclarationError, match=r"Plain\.source_path"):
        ProtobufCodec(Outer)


class Level(ProtoEnum):
    """Levels, with an alias."""

    NONE = 0
    INFO = 1
    NOTICE = 1


class Holder(Message):
    """Wrappers beside proto3 optional, an enum nested in the message, a oneof."""

    class Mode(ProtoEnum):
        """A nested enum."""

        OFF = 0
        ON = 1

    step: Annotated[UInt32Value, Number(1)] = None
    maybe: Annotated[UInt32 | None, Number(2)] = None
    mode: Annotated[Mode, Number(3)] = Mode.OFF
    level: Annotated[Level, Number(4)] = Level.NONE
    text: Annotated[str | None, Number(5, oneof="body")] = None
    raw: Annotated[bytes | None, Number(6, oneof="body")] = None
    old_name: Annotated[str, Number(7, name="oldName")] = ""


class Holders(Service, Protocol, name="demo.v1.Holders"):
    """A service for the export tests."""

    @rpc
    def Put(self, request: Holder) -> Empty: ...

    @rpc
    def Watch(self, request: Empty) -> Iterator[Holder]: ...


def test_the_export_tells_wrappers_optional_oneofs_and_nested_enums_apart() -> None:
    text = proto_file(Holders)
    assert "package demo.v1;" in text
    assert 'import "google/protobuf/wrappers.proto";' in text
    assert 'import "google/protobuf/empty.proto";' in text
    assert "  google.protobuf.UInt32Value step = 1;" in text
    assert "  optional uint32 maybe = 2;" in text
    assert "  enum Mode {\n    OFF = 0;\n    ON = 1;\n  }" in text
    assert "  Holder.Mode mode = 3;" in text
    assert (
        "enum Level {\n  option allow_alias = true;\n  NONE = 0;\n  INFO = 1;\n  NOTICE = 1;\n}"
        in text
    )
    assert "  oneof body {\n    string text = 5;\n    bytes raw = 6;\n  }" in text
    assert "  string oldName = 7;" in text
    assert "  rpc Put (Holder) returns (google.protobuf.Empty);" in text
    assert "  rpc Watch (google.protobuf.Empty) returns (stream Holder);" in text


class Odd(ProtoEnum):
    """An enum without a zero member."""

    ONE = 1


class UsesOdd(Message):
    """A message of it."""

    odd: Annotated[Odd | None, Number(1)] = None


class OddService(Service, Protocol, name="OddService"):
    """A service that reaches it."""

    @rpc
    def Get(self, request: UsesOdd) -> Empty: ...


def test_the_export_refuses_an_enum_without_zero() -> None:
    with pytest.raises(DeclarationError, match="a proto3 enum needs a member = 0"):
        proto_file(OddService)


def test_the_export_refuses_two_classes_of_one_name() -> None:
    twin = type("Numbered", (Message,), {"__annotations__": {"other": Annotated[str, Number(1)]}})
    first, second = Annotated[twin | None, Number(1)], Annotated[Numbered | None, Number(2)]
    fields = {"first": first, "second": second}
    both = type("Both", (Message,), {"__annotations__": fields, "first": None, "second": None})
    with pytest.raises(DeclarationError, match="have the same protobuf name Numbered"):
        proto_file(Holders, messages=(both,))


def test_the_export_takes_services_only() -> None:
    with pytest.raises(DeclarationError, match="takes Service declarations"):
        proto_file(Holder)


def test_a_bool_number_never_stands_in_for_an_int_in_typings_cache() -> None:
    refused: Any = Annotated[int, Number(True)]
    numbered: Any = Annotated[int, Number(1)]
    assert refused is not numbered
    assert type(numbered.__metadata__[0].number) is int


# --- a declaration is JSON-only or numbered throughout: refused when the service is declared


class HalfNumbered(Message):
    """Numbers on some fields only."""

    text: Annotated[str, Number(1)] = ""
    count: int = 0


class NonZeroDefault(Message):
    """A numbered field whose default protobuf could not carry."""

    limit: Annotated[int, Number(1)] = 10


class SameNumber(Message):
    """Two fields of one number."""

    first: Annotated[str, Number(3)] = ""
    second: Annotated[str, Number(3)] = ""


class OutOfRange(Message):
    """A number past the largest."""

    big: Annotated[int, Number(2**29)] = 0


class Reserved(Message):
    """A number of the reserved range."""

    mid: Annotated[int, Number(19500)] = 0


class HoldsPlain(Message):
    """Numbered, but holding a JSON-only message."""

    inner: Annotated[Plain | None, Number(1)] = None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            HalfNumbered,
            "HalfNumbered.count: no protobuf field number, but HalfNumbered.text has one; "
            "declare it as Annotated[..., Number(n)], or remove every Number from HalfNumbered "
            "to keep it JSON-only",
        ),
        (
            NonZeroDefault,
            "NonZeroDefault.limit: default must be the zero value 0 of a numbered field, not 10 "
            "(protobuf cannot tell an absent field from its zero value); default to 0, or "
            "declare X | None = None for explicit presence",
        ),
        (
            SameNumber,
            "SameNumber.second: field number 3 is already used by SameNumber.first; give each "
            "field a number of its own",
        ),
        (OutOfRange, "OutOfRange.big: " + _OUT_OF_RANGE.format(536870912)),
        (Reserved, "Reserved.mid: " + _RESERVED.format(19500)),
        (
            HoldsPlain,
            "HoldsPlain.inner: a numbered field of the JSON-only Plain (Plain.source_path has "
            "no protobuf field number); number every field of Plain (Annotated[..., "
            "Number(n)]), or remove every Number from HoldsPlain to keep it JSON-only",
        ),
    ],
)
def test_a_half_numbered_message_is_refused_when_its_service_is_declared(
    message: type[Message], error: str
) -> None:
    with pytest.raises(DeclarationError) as caught:

        class Refused(Service, Protocol, name="demo.v1.Refused"):
            @rpc
            def Put(self, request: Empty) -> message: ...  # type: ignore[valid-type]

    prefix = (
        "test_a_half_numbered_message_is_refused_when_its_service_is_declared.<locals>."
        "Refused.Put: "
    )
    assert str(caught.value) == prefix + error
    with pytest.raises(DeclarationError) as direct:
        is_numbered(message)
    assert str(direct.value) == error


def test_json_only_numbered_and_fieldless_messages_are_told_apart() -> None:
    assert not is_numbered(Plain)
    assert is_numbered(Numbered) and is_numbered(Holder) and is_numbered(Empty)
    assert is_numbered(type("Fieldless", (Message,), {}))
    holds_json: Any = type("HoldsJson", (Message,), {"__annotations__": {"notes": list[Plain]}})
    assert not is_numbered(holds_json)  # no Number at any depth: JSON-only


def test_a_numbered_message_nested_in_a_json_only_one_is_refused() -> None:
    class Outer(Message):
        inner: Numbered | None = None

    with pytest.raises(DeclarationError) as caught:
        is_numbered(Outer)
    assert str(caught.value) == (
        "test_a_numbered_message_nested_in_a_json_only_one_is_refused.<locals>.Outer.inner: "
        "no protobuf field number; declare every field of "
        "test_a_numbered_message_nested_in_a_json_only_one_is_refused.<locals>.Outer as "
        "Annotated[..., Number(n)] for it to travel as protobuf"
    )


def test_the_seeds_are_numbered_throughout() -> None:
    from transport.examples.jina.protocol import JinaRPC
    from transport.examples.migrator.protocol import Migrator
    from transport.examples.runner.protocol import RunnerProtocol
    from transport.examples.scaleout.protocol import CombinerClient, ModelServiceUpstream

    for service in (JinaRPC, Migrator, RunnerProtocol, CombinerClient, ModelServiceUpstream):
        for method in service.methods().values():
            assert method.protobuf_codecs() is not None, method
