"""Typed error details end to end: this library's servers and clients, grpcio-status on either side.

A handler raises ``RpcError(..., error_details=[...])``; the client reads them
typed; a plain grpcio client reads them with ``grpc_status.rpc_status``; a
grpcio server that sends them with ``grpc_status`` is read typed; a request
that does not decode comes back with a ``BadRequest`` naming the field; a
hostile server's details are bounded.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import grpc
import pytest
from google.protobuf import any_pb2, json_format, struct_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from transport import (
    AsyncClient,
    BadRequest,
    Client,
    Context,
    DebugInfo,
    ErrorInfo,
    Message,
    Number,
    RawDetail,
    ResourceInfo,
    RetryInfo,
    RpcError,
    Service,
    StatusCode,
    bind,
    rpc,
)
from transport._status_map import MAX_SENT_DETAILS_BYTES, error_of
from transport.encoding import rich_status
from transport.error_details import packed
from transport.metadata import DETAILS_KEY, STANDARD_DETAILS_KEY
from transport.testing import AsyncTestServer, TestServer

if TYPE_CHECKING:
    from typing_extensions import assert_type

Serve = Callable[..., TestServer]
ServeAsync = Callable[..., Awaitable[AsyncTestServer]]


class Item(Message):
    """One line of an order."""

    sku: Annotated[str, Number(1)] = ""
    unit_price: Annotated[int, Number(2)] = 0


class Order(Message):
    """What the shop is asked for."""

    items: Annotated[list[Item], Number(1)] = []


class Shop(Service, Protocol, name="test.details.Shop"):
    """Refuses every order, with details."""

    @rpc
    def Buy(self, request: Order) -> Order: ...

    @rpc
    def Watch(self, request: Order) -> Iterator[Order]: ...


class LooseItem(Message):
    """An item whose price a careless client sends as text."""

    sku: Annotated[str, Number(1)] = ""
    unit_price: Annotated[str, Number(2)] = ""


class LooseOrder(Message):
    items: Annotated[list[LooseItem], Number(1)] = []


class LooseShop(Service, Protocol, name="test.details.Shop"):
    """The same path, declared with the wrong price type."""

    @rpc
    def Buy(self, request: LooseOrder) -> LooseOrder: ...


HINT = RawDetail(type_url="type.googleapis.com/acme.v1.Hint", value=b"\x0a\x04kite")
DETAILS = (
    ErrorInfo(reason="STOCK_OUT", domain="shop.example.com", metadata={"sku": "kite"}),
    RetryInfo(retry_delay=timedelta(seconds=30)),
    ResourceInfo(resource_type="kite", resource_name="kites/7"),
    BadRequest(field_violations=[BadRequest.FieldViolation(field="items[0].sku", reason="GONE")]),
    DebugInfo(stack_entries=["shop.py:12"], detail="shelf empty"),
    HINT,
)


class ShopImpl:
    """Fails each call with :data:`DETAILS` (``Watch`` after one order)."""

    def __init__(self, details: Any = DETAILS) -> None:
        self.details = details

    def _refuse(self) -> RpcError:
        return RpcError(
            StatusCode.RESOURCE_EXHAUSTED,
            "out of kites",
            {"sku": "kite"},
            error_details=self.details,
        )

    def Buy(self, request: Order) -> Order:
        raise self._refuse()

    def Watch(self, request: Order) -> Iterator[Order]:
        yield request
        raise self._refuse()


class AsyncShopImpl(ShopImpl):
    """The same, on asyncio."""

    async def Buy(self, request: Order) -> Order:  # type: ignore[override]
        raise self._refuse()

    async def Watch(self, request: Order) -> Any:
        yield request
        raise self._refuse()


def _assert_refused(error: RpcError) -> None:
    assert error.code is StatusCode.RESOURCE_EXHAUSTED
    assert error.message == "out of kites"
    assert error.details == {"sku": "kite"}  # the JSON details, as before
    assert error.error_details == DETAILS
    assert error.details_of(ErrorInfo) == (DETAILS[0],)
    if TYPE_CHECKING:  # mypy --strict over the tests checks it: typed as asked
        assert_type(error.details_of(ErrorInfo), tuple[ErrorInfo, ...])
    assert error.details_of(RetryInfo)[0].retry_delay == timedelta(seconds=30)
    assert error.details_of(RawDetail) == (HINT,)
    assert error.details_of(BadRequest)[0].field_violations[0].field == "items[0].sku"
    keys = {key for key, _ in error.trailing_metadata}
    assert not keys & {DETAILS_KEY, STANDARD_DETAILS_KEY}


# -- this library on both ends ---------------------------------------------------------------


def test_typed_details_round_trip_sync(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl()))
    with pytest.raises(RpcError) as unary:
        server.client.call(Shop.Buy, Order())
    _assert_refused(unary.value)
    with pytest.raises(RpcError) as streamed:
        list(server.client.call(Shop.Watch, Order()))
    _assert_refused(streamed.value)


class AbortingShop(ShopImpl):
    """Refuses through ``context.abort``, as grpcio's handlers do."""

    def Buy(self, request: Order, context: Context) -> Order:  # type: ignore[override]
        context.abort(
            StatusCode.RESOURCE_EXHAUSTED, "out of kites", {"sku": "kite"}, error_details=DETAILS
        )


def test_context_abort_sends_typed_details(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, AbortingShop()))
    with pytest.raises(RpcError) as caught:
        server.client.call(Shop.Buy, Order())
    _assert_refused(caught.value)


def test_typed_details_round_trip_on_the_protobuf_wire(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl()), wire="protobuf")
    with server.connect(wire="protobuf") as client, pytest.raises(RpcError) as caught:
        client.call(Shop.Buy, Order())
    _assert_refused(caught.value)


@pytest.mark.anyio
async def test_typed_details_round_trip_async(transport_serve_async: ServeAsync) -> None:
    server = await transport_serve_async(bind(Shop, AsyncShopImpl()))
    with pytest.raises(RpcError) as unary:
        await server.client.call(Shop.Buy, Order())
    _assert_refused(unary.value)
    with pytest.raises(RpcError) as streamed:
        async for _ in server.client.call(Shop.Watch, Order()):
            pass
    _assert_refused(streamed.value)


def test_an_error_without_typed_details_has_none(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl(details=())))
    with pytest.raises(RpcError) as caught:
        server.client.call(Shop.Buy, Order())
    assert caught.value.details == {"sku": "kite"}
    assert caught.value.error_details == () and caught.value.details_of(ErrorInfo) == ()


# -- grpcio-status on the other end ---------------------------------------------------------


def test_a_grpcio_client_reads_them_with_grpc_status(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl()))
    with grpc.insecure_channel(server.address) as channel:
        buy: Any = channel.unary_unary("/test.details.Shop/Buy")
        with pytest.raises(grpc.RpcError) as caught:
            buy(b"{}", timeout=10)
    status = rpc_status.from_call(caught.value)  # checks code and message against the call's
    assert status is not None
    assert (status.code, status.message) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        "out of kites",
    )
    value = struct_pb2.Value()
    assert status.details[0].Unpack(value)
    assert json_format.MessageToDict(value) == {"sku": "kite"}
    info = error_details_pb2.ErrorInfo()
    assert status.details[1].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "STOCK_OUT",
        "shop.example.com",
        {"sku": "kite"},
    )
    retry = error_details_pb2.RetryInfo()
    assert status.details[2].Unpack(retry)
    assert retry.retry_delay.seconds == 30
    bad = error_details_pb2.BadRequest()
    assert status.details[4].Unpack(bad)
    assert bad.field_violations[0].reason == "GONE"
    assert (status.details[6].type_url, status.details[6].value) == (HINT.type_url, HINT.value)


def _any(message: Any) -> any_pb2.Any:
    packed_any = any_pb2.Any()
    packed_any.Pack(message)
    return packed_any


class GrpcStatusShop(grpc.GenericRpcHandler):
    """A plain grpcio server that fails ``Buy`` with details made by grpc_status."""

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        def buy(request: bytes, context: grpc.ServicerContext) -> bytes:
            status = status_pb2.Status(
                code=grpc.StatusCode.FAILED_PRECONDITION.value[0],
                message="terms not accepted",
                details=[
                    _any(error_details_pb2.ErrorInfo(reason="TOS", domain="shop.example.com")),
                    _any(
                        error_details_pb2.PreconditionFailure(
                            violations=[error_details_pb2.PreconditionFailure.Violation(type="TOS")]
                        )
                    ),
                    _any(struct_pb2.ListValue()),  # a type this library has no class for
                ],
            )
            context.abort_with_status(rpc_status.to_status(status))
            raise AssertionError("unreachable")

        return grpc.unary_unary_rpc_method_handler(buy)


@pytest.fixture(scope="module")
def grpc_status_server() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(2), handlers=[GrpcStatusShop()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def _assert_grpc_status_read(error: RpcError) -> None:
    from transport import PreconditionFailure

    assert error.code is StatusCode.FAILED_PRECONDITION
    assert error.message == "terms not accepted"
    assert error.details is None
    assert error.details_of(ErrorInfo) == (ErrorInfo(reason="TOS", domain="shop.example.com"),)
    (failure,) = error.details_of(PreconditionFailure)
    assert [v.type for v in failure.violations] == ["TOS"]
    assert error.details_of(RawDetail) == (
        RawDetail("type.googleapis.com/google.protobuf.ListValue", b""),
    )


def test_a_grpc_status_server_is_read_typed(grpc_status_server: str) -> None:
    with Client.connect(grpc_status_server) as client, pytest.raises(RpcError) as caught:
        client.call(Shop.Buy, Order())
    _assert_grpc_status_read(caught.value)


@pytest.mark.anyio
async def test_a_grpc_status_server_is_read_typed_async(grpc_status_server: str) -> None:
    async with AsyncClient.connect(grpc_status_server) as client:
        with pytest.raises(RpcError) as caught:
            await client.call(Shop.Buy, Order())
    _assert_grpc_status_read(caught.value)


# -- a request that does not decode ---------------------------------------------------------


def _violation(error: RpcError) -> BadRequest.FieldViolation:
    assert error.code is StatusCode.INVALID_ARGUMENT
    (bad,) = error.details_of(BadRequest)
    (violation,) = bad.field_violations
    return violation


def test_a_decode_error_names_the_field_in_a_bad_request(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl()))
    order = LooseOrder(items=[LooseItem(sku="a"), LooseItem(sku="kite", unit_price="cheap")])
    with pytest.raises(RpcError) as caught:
        server.client.call(LooseShop.Buy, order)
    violation = _violation(caught.value)
    assert violation.field == "items[1].unitPrice"  # the JSON name, as the JSON wire sends it
    assert violation.description == "Expected `int`, got `str`"
    assert "at `$.items[1].unitPrice`" in caught.value.message


@pytest.mark.anyio
async def test_a_decode_error_names_the_field_async(transport_serve_async: ServeAsync) -> None:
    server = await transport_serve_async(bind(Shop, AsyncShopImpl()))
    order = LooseOrder(items=[LooseItem(unit_price="cheap")])
    with pytest.raises(RpcError) as caught:
        await server.client.call(LooseShop.Buy, order)
    assert _violation(caught.value).field == "items[0].unitPrice"


def test_a_protobuf_decode_error_names_the_field(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl()), wire="protobuf")
    with grpc.insecure_channel(server.address) as channel:
        buy: Any = channel.unary_unary("/test.details.Shop/Buy")
        with pytest.raises(grpc.RpcError) as caught:
            # items[1].sku is not UTF-8
            buy(b"\x0a\x00\x0a\x03\x0a\x01\xff", timeout=10)
    violation = _violation(error_of(caught.value))
    assert violation.field == "items[1].sku"
    assert violation.description.startswith("a string is not UTF-8")


def test_a_grpcio_client_reads_the_bad_request(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl()))
    with grpc.insecure_channel(server.address) as channel:
        buy: Any = channel.unary_unary("/test.details.Shop/Buy")
        with pytest.raises(grpc.RpcError) as caught:
            buy(b'{"items": [{"unitPrice": 1}, {}, {"unitPrice": []}]}', timeout=10)
    status = rpc_status.from_call(caught.value)
    assert status is not None and len(status.details) == 1
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("items[2].unitPrice", "Expected `int`, got `array`")
    ]


class Named(Message):
    """A message with a required field."""

    name: Annotated[str, Number(1)]


class Registry(Service, Protocol, name="test.details.Registry"):
    @rpc
    def Add(self, request: Named) -> Named: ...


class RegistryImpl:
    def Add(self, request: Named) -> Named:
        return request


def test_a_missing_required_field_is_named(transport_serve: Serve) -> None:
    server = transport_serve(bind(Registry, RegistryImpl()))
    with grpc.insecure_channel(server.address) as channel:
        add: Any = channel.unary_unary("/test.details.Registry/Add")
        with pytest.raises(grpc.RpcError) as caught:
            add(b"{}", timeout=10)
    assert _violation(error_of(caught.value)).field == "name"


def test_a_decode_error_without_a_path_has_no_bad_request(transport_serve: Serve) -> None:
    server = transport_serve(bind(Shop, ShopImpl()))
    with grpc.insecure_channel(server.address) as channel:
        buy: Any = channel.unary_unary("/test.details.Shop/Buy")
        with pytest.raises(grpc.RpcError) as caught:
            buy(b"[1]", timeout=10)
    error = error_of(caught.value)
    assert error.code is StatusCode.INVALID_ARGUMENT and error.error_details == ()


class Colour(Message):
    """A JSON-only message whose field takes two words only."""

    name: Literal["red", "blue"] = "red"


class Paint(Service, Protocol, name="test.details.Paint"):
    @rpc
    def Mix(self, request: Colour) -> Colour: ...


class PaintImpl:
    def Mix(self, request: Colour) -> Colour:
        return request


def test_a_huge_wrong_value_is_shortened_not_echoed(transport_serve: Serve) -> None:
    server = transport_serve(bind(Paint, PaintImpl()))
    with grpc.insecure_channel(server.address) as channel:
        mix: Any = channel.unary_unary("/test.details.Paint/Mix")
        with pytest.raises(grpc.RpcError) as caught:
            mix(b'{"name": "' + b"x" * 100_000 + b'"}', timeout=10)
    error = error_of(caught.value)
    # msgspec quotes the value whole: echoed twice it would pass the client's
    # metadata limit and turn into RESOURCE_EXHAUSTED.
    assert error.code is StatusCode.INVALID_ARGUMENT
    assert error.message.startswith("request does not decode: Invalid enum value 'xxx")
    assert error.message.endswith("xxx' - at `$.name`") and len(error.message) < 1100
    assert _violation(error).field == "name"


# -- bounds ----------------------------------------------------------------------------------


def test_what_a_handler_sends_is_bounded(
    transport_serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    many = [ErrorInfo(reason=f"R{n}") for n in range(500)]
    server = transport_serve(bind(Shop, ShopImpl(details=many)))
    with caplog.at_level(logging.ERROR, logger="transport"), pytest.raises(RpcError) as caught:
        server.client.call(Shop.Buy, Order())
    error = caught.value
    assert error.code is StatusCode.RESOURCE_EXHAUSTED and error.message == "out of kites"
    assert error.details == {"sku": "kite"}
    assert error.error_details == tuple(many[: len(error.error_details)])
    assert 0 < len(error.error_details) <= rich_status.MAX_DETAILS
    assert "error details past" in caplog.text


def test_a_huge_detail_is_not_sent_and_the_call_keeps_its_status(
    transport_serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    stack = [f"frame {n}" * 20 for n in range(2000)]
    details = [ErrorInfo(reason="FIRST"), DebugInfo(stack_entries=stack), ErrorInfo(reason="LAST")]
    server = transport_serve(bind(Shop, ShopImpl(details=details)))
    with caplog.at_level(logging.ERROR, logger="transport"), pytest.raises(RpcError) as caught:
        server.client.call(Shop.Buy, Order())
    assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.message == "out of kites"
    assert caught.value.error_details == (ErrorInfo(reason="FIRST"),)
    assert str(MAX_SENT_DETAILS_BYTES) in caplog.text


def test_what_is_not_a_detail_is_dropped_and_logged(
    transport_serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    details = [{"reason": "a dict"}, ErrorInfo(reason="KEPT")]
    server = transport_serve(bind(Shop, ShopImpl(details=details)))
    with caplog.at_level(logging.ERROR, logger="transport"), pytest.raises(RpcError) as caught:
        server.client.call(Shop.Buy, Order())
    assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.error_details == (ErrorInfo(reason="KEPT"),)
    assert "dict is not an error detail" in caplog.text


def _hostile_status(trailer: bytes) -> Callable[[Any], bytes]:
    def answer(context: Any) -> bytes:
        context.abort_with_status(_Status(trailer))
        raise AssertionError("unreachable")

    return answer


class _Status(grpc.Status):
    def __init__(self, trailer: bytes) -> None:
        self.code = grpc.StatusCode.ABORTED
        self.details = "hostile on purpose"
        self.trailing_metadata = ((STANDARD_DETAILS_KEY, trailer),)


def _trailer(*details: RawDetail) -> bytes:
    return rich_status.encode(10, "hostile on purpose", rich_status.unset(), details)


def _nested_value(depth: int) -> bytes:
    """A ``google.protobuf.Value``: a list holding a list... ``depth`` times."""
    value = b""
    for _ in range(depth):
        values = b"\x0a" + _varint(len(value)) + value  # ListValue.values
        value = b"\x32" + _varint(len(values)) + values  # Value.list_value
    return value


def _varint(n: int) -> bytes:
    return bytes([n]) if n < 0x80 else bytes([n & 0x7F | 0x80]) + _varint(n >> 7)


# Each under grpc-core's 8 KiB soft limit on metadata (base64 included), so the
# trailers reach the client and the client's own bounds are what is tested.
EVERY_DETAIL = RawDetail("a/google.rpc.ErrorInfo", b"")
HOSTILE: dict[str, bytes] = {
    "garbage": b"\xff\x00garbage",
    "deep groups": b"\x0b" * 3000,
    "many details": _trailer(*[EVERY_DETAIL] * 150),
    "broken error info": _trailer(RawDetail("t/google.rpc.ErrorInfo", b"\x0b" * 3000)),
    "value nested deeply": _trailer(RawDetail(rich_status.VALUE_TYPE_URL, _nested_value(400))),
}


class HostileServer(grpc.GenericRpcHandler):
    """Ends every call ABORTED with the trailer of the case named in the metadata."""

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        case = str(dict(details.invocation_metadata or ()).get("case", ""))
        answer = _hostile_status(HOSTILE[case])
        return grpc.unary_unary_rpc_method_handler(lambda request, context: answer(context))


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(2), handlers=[HostileServer()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_server_s_details_are_bounded(hostile_server: str, case: str) -> None:
    with Client.connect(hostile_server) as client, pytest.raises(RpcError) as caught:
        client.call(Shop.Buy, Order(), metadata=[("case", case)])
    error = caught.value
    assert (error.code, error.message) == (StatusCode.ABORTED, "hostile on purpose")
    assert len(error.error_details) <= rich_status.MAX_DETAILS
    if case == "many details":
        assert error.error_details == (ErrorInfo(),) * rich_status.MAX_DETAILS
    if case == "broken error info":
        assert error.details_of(RawDetail)[0].value == b"\x0b" * 3000
    if case == "value nested deeply":
        assert error.details is None and len(error.details_of(RawDetail)) == 1


class _FakeCallError(grpc.RpcError):
    """What grpcio raises, with trailers past what grpc-core would let through by default."""

    def __init__(self, trailer: bytes) -> None:
        self._trailer = trailer

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.ABORTED

    def details(self) -> str:
        return "hostile on purpose"

    def trailing_metadata(self) -> Any:
        return ((STANDARD_DETAILS_KEY, self._trailer),)


def test_a_trailer_past_the_size_bound_is_not_decoded() -> None:
    huge = _trailer(packed(DebugInfo(detail="x" * 100_000)))
    error = error_of(_FakeCallError(huge))
    assert (error.code, error.error_details) == (StatusCode.ABORTED, ())
    fits = _trailer(packed(DebugInfo(detail="x" * 10_000)))
    assert error_of(_FakeCallError(fits)).error_details == (DebugInfo(detail="x" * 10_000),)
