"""The standard error details: declared as ``error_details.proto`` says, read as upb reads.

The detail messages are checked field by field against the descriptor that
googleapis-common-protos ships, their bytes against upb's, and the reading of
a ``google.rpc.Status`` trailer against hostile bytes: too many details,
malformed ones, deep nesting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor, json_format, struct_pb2
from google.protobuf.message import Message as PbMessage
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from transport import (
    BadRequest,
    DebugInfo,
    ErrorDetail,
    ErrorInfo,
    Help,
    LocalizedMessage,
    PreconditionFailure,
    QuotaFailure,
    RawDetail,
    RequestInfo,
    ResourceInfo,
    RetryInfo,
)
from transport.encoding import rich_status
from transport.encoding.protobuf.schema import MessageSchema, schema_of
from transport.error_details import packed, unpacked

SAMPLES: list[ErrorDetail] = [
    ErrorInfo(reason="STOCK_OUT", domain="shop.example.com", metadata={"sku": "kite", "n": "0"}),
    RetryInfo(retry_delay=timedelta(seconds=1, microseconds=500_000)),
    DebugInfo(stack_entries=["main.py:3", "shop.py:10"], detail="boom"),
    QuotaFailure(
        violations=[
            QuotaFailure.Violation(
                subject="project:7",
                description="too many kites",
                api_service="shop.example.com",
                quota_metric="shop.example.com/kites",
                quota_id="KitesPerDay",
                quota_dimensions={"region": "eu"},
                quota_value=-5,
                future_quota_value=0,
            )
        ]
    ),
    PreconditionFailure(
        violations=[PreconditionFailure.Violation(type="TOS", subject="user:1", description="x")]
    ),
    BadRequest(
        field_violations=[
            BadRequest.FieldViolation(
                field="items[2].sku",
                description="no such sku",
                reason="UNKNOWN_SKU",
                localized_message=LocalizedMessage(locale="fr-FR", message="inconnu"),
            )
        ]
    ),
    RequestInfo(request_id="r-1", serving_data="pod-3"),
    ResourceInfo(resource_type="kite", resource_name="kites/7", owner="user:1", description="d"),
    Help(links=[Help.Link(description="docs", url="https://example.com/kites")]),
    LocalizedMessage(locale="en-GB", message="out of kites"),
]
UPB: dict[str, Any] = {
    "ErrorInfo": {
        "reason": "STOCK_OUT",
        "domain": "shop.example.com",
        "metadata": {"sku": "kite", "n": "0"},
    },
    "RetryInfo": {"retryDelay": "1.500s"},
    "DebugInfo": {"stackEntries": ["main.py:3", "shop.py:10"], "detail": "boom"},
    "QuotaFailure": {
        "violations": [
            {
                "subject": "project:7",
                "description": "too many kites",
                "apiService": "shop.example.com",
                "quotaMetric": "shop.example.com/kites",
                "quotaId": "KitesPerDay",
                "quotaDimensions": {"region": "eu"},
                "quotaValue": "-5",
                "futureQuotaValue": "0",  # proto3 optional: a zero that was set is sent
            }
        ]
    },
    "PreconditionFailure": {
        "violations": [{"type": "TOS", "subject": "user:1", "description": "x"}]
    },
    "BadRequest": {
        "fieldViolations": [
            {
                "field": "items[2].sku",
                "description": "no such sku",
                "reason": "UNKNOWN_SKU",
                "localizedMessage": {"locale": "fr-FR", "message": "inconnu"},
            }
        ]
    },
    "RequestInfo": {"requestId": "r-1", "servingData": "pod-3"},
    "ResourceInfo": {
        "resourceType": "kite",
        "resourceName": "kites/7",
        "owner": "user:1",
        "description": "d",
    },
    "Help": {"links": [{"description": "docs", "url": "https://example.com/kites"}]},
    "LocalizedMessage": {"locale": "en-GB", "message": "out of kites"},
}


def _pb_fields(message: descriptor.Descriptor) -> set[tuple[Any, ...]]:
    """Each field as (number, name, kind, shape, explicit presence of a scalar)."""
    fields = set()
    for field in message.fields:
        target = field.message_type
        if target is not None and target.GetOptions().map_entry:
            kind = target.fields_by_name["value"].type
            fields.add((field.number, field.name, _pb_kind(kind, None), "map", False))
            continue
        repeated = field.is_repeated
        optional = target is None and field.has_presence and not repeated
        shape = "repeated" if repeated else "one"
        fields.add((field.number, field.name, _pb_kind(field.type, target), shape, optional))
    return fields


def _pb_kind(kind: int, target: descriptor.Descriptor | None) -> str:
    if target is not None:
        return target.full_name.removeprefix("google.rpc.")
    name = {descriptor.FieldDescriptor.TYPE_STRING: "string"}
    return name.get(kind) or {descriptor.FieldDescriptor.TYPE_INT64: "int64"}[kind]


def _our_fields(schema: MessageSchema) -> set[tuple[Any, ...]]:
    fields = set()
    for field in schema.fields:
        value = field.value
        kind = value.message.name if value.message is not None else value.kind
        if field.label == "map":
            fields.add((field.number, field.proto_name, kind, "map", False))
            continue
        scalar = value.message is None and not value.kind.startswith("google.protobuf.")
        optional = field.label == "optional" and scalar
        shape = "repeated" if field.label == "repeated" else "one"
        fields.add((field.number, field.proto_name, kind, shape, optional))
    return fields


def _nested(message: descriptor.Descriptor) -> dict[str, descriptor.Descriptor]:
    return {n.name: n for n in message.nested_types if not n.GetOptions().map_entry}


@pytest.mark.parametrize("detail", SAMPLES, ids=lambda d: type(d).__name__)
def test_fields_match_error_details_proto(detail: ErrorDetail) -> None:
    pb = error_details_pb2.DESCRIPTOR.message_types_by_name[type(detail).__name__]
    schema = schema_of(type(detail))
    assert _our_fields(schema) == _pb_fields(pb)
    for name, inner in _nested(pb).items():
        ours = schema_of(getattr(type(detail), name))
        assert _our_fields(ours) == _pb_fields(inner)
        assert ours.name == f"{type(detail).__name__}.{name}"


def test_every_message_of_error_details_proto_is_declared() -> None:
    declared = {type(detail).__name__ for detail in SAMPLES}
    assert declared == set(error_details_pb2.DESCRIPTOR.message_types_by_name)


@pytest.mark.parametrize("detail", SAMPLES, ids=lambda d: type(d).__name__)
def test_upb_reads_what_is_packed_and_packs_what_is_read(detail: ErrorDetail) -> None:
    name = type(detail).__name__
    raw = packed(detail)
    assert raw.type_url == f"type.googleapis.com/google.rpc.{name}"
    theirs: PbMessage = getattr(error_details_pb2, name)()
    any_message = any_pb2.Any(type_url=raw.type_url, value=raw.value)
    assert any_message.Unpack(theirs)
    assert json_format.MessageToDict(theirs) == UPB[name]
    assert unpacked(RawDetail(raw.type_url, theirs.SerializeToString())) == detail


def test_packing_refuses_what_is_not_a_detail() -> None:
    with pytest.raises(TypeError, match="not an error detail: send ErrorInfo"):
        packed({"reason": "x"})  # type: ignore[arg-type]


def test_a_type_is_named_by_the_url_after_its_last_slash() -> None:
    value = packed(ErrorInfo(reason="R")).value
    assert unpacked(RawDetail("example.com/x/google.rpc.ErrorInfo", value)) == ErrorInfo(reason="R")
    unknown = RawDetail("type.googleapis.com/acme.v1.Hint", b"\x0a\x01x")
    assert unpacked(unknown) is unknown


def _status(*details: any_pb2.Any, json: Any = None) -> bytes:
    status = status_pb2.Status(code=9, message="no")
    if json is not None:
        status.details.add().Pack(json_format.ParseDict(json, struct_pb2.Value()))
    status.details.extend(details)
    return bytes(status.SerializeToString())


def _packed_pb(message: PbMessage) -> any_pb2.Any:
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped


def test_a_grpcio_status_with_json_and_typed_details_decodes() -> None:
    info = _packed_pb(error_details_pb2.ErrorInfo(reason="R", domain="d"))
    foreign = any_pb2.Any(type_url="type.googleapis.com/acme.v1.Hint", value=b"\x0a\x01x")
    found = rich_status.decode(_status(info, foreign, json={"a": [1.0]}))
    assert found.json == {"a": [1.0]}
    assert [unpacked(raw) for raw in found.details] == [
        ErrorInfo(reason="R", domain="d"),
        RawDetail("type.googleapis.com/acme.v1.Hint", b"\x0a\x01x"),
    ]


def test_the_json_value_goes_first_and_round_trips() -> None:
    data = rich_status.encode(5, "gone", {"k": "v"}, [packed(RetryInfo(retry_delay=timedelta(1)))])
    status = status_pb2.Status.FromString(data)
    assert (status.code, status.message) == (5, "gone")
    assert status.details[0].type_url == rich_status.VALUE_TYPE_URL
    assert status.details[1].Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    found = rich_status.decode(data)
    assert found.json == {"k": "v"}
    assert [unpacked(raw) for raw in found.details] == [RetryInfo(retry_delay=timedelta(1))]


# -- hostile trailers -------------------------------------------------------------------------


def test_a_peer_s_details_past_the_bound_are_ignored() -> None:
    many = [_packed_pb(error_details_pb2.ErrorInfo(reason=str(n))) for n in range(1000)]
    found = rich_status.decode(_status(*many))
    assert len(found.details) == rich_status.MAX_DETAILS
    assert unpacked(found.details[-1]) == ErrorInfo(reason=str(rich_status.MAX_DETAILS - 1))


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",
        b"\x1a\x05\x0a",
        b"\x1a\x7f" + b"\x00" * 10,
        b"\x0b" * 5000,
        b"\x1a\x02\x0b\x0b",
    ],
    ids=["garbage", "truncated", "length past the end", "deep groups", "open group in a detail"],
)
def test_a_trailer_that_does_not_decode_holds_no_details(data: bytes) -> None:
    found = rich_status.decode(data)
    assert rich_status.is_unset(found.json) and found.details == ()


@pytest.mark.parametrize(
    "value",
    [
        b"\xff",
        b"\x0a\x05ab",
        b"\x1a" + b"\x0b" * 3000,
        b"\x0b" * 100_000,
        b"\x0a\x01\xff",
    ],
    ids=["garbage", "truncated", "deep groups", "deeper groups", "not utf-8"],
)
def test_a_known_type_that_does_not_decode_is_kept_raw(value: bytes) -> None:
    raw = RawDetail("type.googleapis.com/google.rpc.ErrorInfo", value)
    assert unpacked(raw) is raw


def test_a_json_value_nested_too_deeply_is_kept_raw() -> None:
    value = b""  # a null Value, in 300 lists
    for _ in range(300):
        values = b"\x0a" + _varint(len(value)) + value
        value = b"\x32" + _varint(len(values)) + values
    status = status_pb2.Status(code=3, message="m")
    status.details.add(type_url=rich_status.VALUE_TYPE_URL, value=value)
    status.details.add().Pack(struct_pb2.Value(string_value="shallow"))
    found = rich_status.decode(status.SerializeToString())
    assert found.json == "shallow"
    assert found.details == (RawDetail(rich_status.VALUE_TYPE_URL, value),)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
