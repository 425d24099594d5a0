"""What proto3 JSON peers send is read; what the codec writes is unchanged.

protojson (grpc-gateway, connect, grpc-go) writes 64-bit integers as strings,
may name fields as in the ``.proto`` (``sensor_id``), writes ``"NaN"`` and
``"Infinity"`` for floats and may send URL-safe or unpadded base64. Each form
is read by :class:`JsonCodec` directly and through a real server, whose answer
is the codec's own strict output. Non-finite floats are written as protojson
writes them too (JSON has no NaN), so that they read back.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated, Any, Protocol

import grpc
import numpy as np
import pytest
from google.protobuf import json_format, wrappers_pb2

from transport import (
    DecodeError,
    Duration,
    Fixed64,
    FrozenMessage,
    Int32,
    Int64,
    JsonCodec,
    Message,
    Number,
    Service,
    SFixed64,
    SInt64,
    UInt32,
    UInt64,
    UInt64Value,
    bind,
    rpc,
)
from transport.encoding.json_codec import MAX_JSON_DEPTH
from transport.testing import TestServer, serve


class Inner(Message):
    big_id: Annotated[UInt64, Number(1)] = 0
    blob: Annotated[bytes, Number(2)] = b""


class Reading(Message):
    sensor_id: Annotated[str, Number(1)] = ""
    seq: Annotated[Int64, Number(2)] = 0
    count: Annotated[int, Number(3)] = 0
    small: Annotated[Int32, Number(4)] = 0
    unsigned: Annotated[UInt32, Number(5)] = 0
    zigzag: Annotated[SInt64, Number(6)] = 0
    fixed: Annotated[Fixed64, Number(7)] = 0
    signed_fixed: Annotated[SFixed64, Number(8)] = 0
    ratio: Annotated[float, Number(9)] = 0.0
    payload: Annotated[bytes, Number(10)] = b""
    code: Annotated[int, Number(11, name="errorCode")] = 0  # the .proto calls it errorCode
    inner: Annotated[Inner | None, Number(12)] = None
    history: Annotated[list[Inner], Number(13)] = []
    by_name: Annotated[dict[str, Inner], Number(14)] = {}
    step: Annotated[UInt64Value, Number(15)] = None
    labels: Annotated[dict[str, Any], Number(16)] = {}  # free JSON: never renamed
    elapsed: Annotated[Duration | None, Number(17)] = None


class Frame(Message):
    frame_id: str = ""
    pixels: np.ndarray | None = None


class Node(Message):
    node_id: str = ""
    child: Node | None = None


class Legacy(Message, rename=None):
    source_path: str = ""


class Readings(Service, Protocol, name="test.leniency.Readings"):
    @rpc
    def Echo(self, request: Reading) -> Reading: ...


class ReadingsServer:
    def Echo(self, request: Reading, context: Any) -> Reading:
        return request


def _url_safe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


RAW = b"\xfb\xef\xff\x00ab"  # standard base64 "++//AGFi": URL-safe has "-" and "_"

ACCEPTED: dict[str, tuple[dict[str, Any], Reading]] = {
    "int64 as a string": ({"seq": "-9223372036854775808"}, Reading(seq=-(2**63))),
    "plain int as a string": ({"count": "42"}, Reading(count=42)),
    "int32 as a string": ({"small": "-5"}, Reading(small=-5)),
    "uint32 as a string": ({"unsigned": "4294967295"}, Reading(unsigned=2**32 - 1)),
    "uint64 as a string": (
        {"inner": {"bigId": "18446744073709551615"}},
        Reading(inner=Inner(big_id=2**64 - 1)),
    ),
    "sint64 as a string": ({"zigzag": "-7"}, Reading(zigzag=-7)),
    "fixed64 as a string": ({"fixed": "7"}, Reading(fixed=7)),
    "sfixed64 as a string": ({"signedFixed": "-7"}, Reading(signed_fixed=-7)),
    "integer in exponent form": ({"count": "1e3", "seq": "2.0"}, Reading(count=1000, seq=2)),
    "wrapper as a string": ({"step": "5"}, Reading(step=5)),
    "proto names": (
        {"sensor_id": "t1", "signed_fixed": 3, "inner": {"big_id": 9}},
        Reading(sensor_id="t1", signed_fixed=3, inner=Inner(big_id=9)),
    ),
    "proto names in lists and maps": (
        {"history": [{"big_id": "1"}, {"bigId": 2}], "by_name": {"a": {"big_id": "3"}}},
        Reading(history=[Inner(big_id=1), Inner(big_id=2)], by_name={"a": Inner(big_id=3)}),
    ),
    "the name given by Number": ({"errorCode": 4}, Reading(code=4)),
    "Infinity": ({"ratio": "Infinity"}, Reading(ratio=math.inf)),
    "-Infinity": ({"ratio": "-Infinity"}, Reading(ratio=-math.inf)),
    "float as a string": ({"ratio": "-1.5e2"}, Reading(ratio=-150.0)),
    "URL-safe base64": ({"payload": base64.urlsafe_b64encode(RAW).decode()}, Reading(payload=RAW)),
    "unpadded base64": ({"inner": {"blob": "YWI"}}, Reading(inner=Inner(blob=b"ab"))),
    "URL-safe unpadded base64": ({"payload": _url_safe(RAW[:4])}, Reading(payload=RAW[:4])),
    "Duration as protojson writes it": (
        {"elapsed": "-1.000250s"},
        Reading(elapsed=-timedelta(seconds=1, microseconds=250)),
    ),
    "Duration as the codec writes it": ({"elapsed": "PT2S"}, Reading(elapsed=timedelta(seconds=2))),
    "a field name as a string value": ({"sensorId": "sensor_id"}, Reading(sensor_id="sensor_id")),
    "free JSON kept as sent": (
        {"sensor_id": "x", "labels": {"big_id": "1", "n": "2"}},
        Reading(sensor_id="x", labels={"big_id": "1", "n": "2"}),
    ),
}

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "int64 not a number": ({"seq": "abc"}, "Expected `int`, got `str` - at `$.seq`"),
    "NaN for an int": ({"count": "NaN"}, "Expected `int`, got `str` - at `$.count`"),
    "int with a fraction": ({"seq": "1.5"}, "Expected `int`, got `str` - at `$.seq`"),
    "int with a leading zero": ({"seq": "01"}, "Expected `int`, got `str` - at `$.seq`"),
    "int with spaces": ({"seq": " 1"}, "Expected `int`, got `str` - at `$.seq`"),
    "int32 above range": ({"small": "2147483648"}, "Expected `int` <= 2147483647 - at `$.small`"),
    "uint64 negative, deep": (
        {"history": [{}, {"big_id": "-1"}]},
        "Expected `int` >= 0 - at `$.history[1].bigId`",
    ),
    "Duration with a unit other than s": ({"elapsed": "5m"}, "- at `$.elapsed`"),
    "float out of range": ({"ratio": "1e999"}, "Expected `float`, got `str` - at `$.ratio`"),
    "base64 URL-safe and standard mixed": ({"payload": "a+b-"}, "- at `$.payload`"),
    "both names": ({"sensorId": "a", "sensor_id": "b"}, "duplicate field `sensorId`"),
    "both names, nested": (
        {"inner": {"bigId": 1, "big_id": 2}},
        "duplicate field `bigId` (also as `big_id`) - at `$.inner`",
    ),
    "huge integer string": ({"seq": "9" * 1_000_000}, "Expected `int`, got `str` - at `$.seq`"),
    "huge float string": ({"ratio": "1" * 1_000_000}, "Expected `float`, got `str` - at `$.ratio`"),
}

CODEC = JsonCodec(Reading)


@pytest.fixture(scope="module")
def readings() -> Iterator[TestServer]:
    with serve(bind(Readings, ReadingsServer())) as server:
        yield server


def _echo(server: TestServer, payload: bytes) -> bytes:
    """Send ``payload`` as it is (a peer's bytes) and return the answer's bytes."""
    echo: Any = server.client.channel.unary_unary("/test.leniency.Readings/Echo")
    answer: bytes = echo(payload, timeout=10)
    return answer


@pytest.mark.parametrize(("document", "expected"), list(ACCEPTED.values()), ids=list(ACCEPTED))
def test_protojson_forms_are_read_and_answered_in_the_strict_form(
    readings: TestServer, document: dict[str, Any], expected: Reading
) -> None:
    payload = json.dumps(document).encode()
    assert CODEC.decode(payload) == expected
    assert _echo(readings, payload) == CODEC.encode(expected)


@pytest.mark.parametrize(("document", "error"), list(REFUSED.values()), ids=list(REFUSED))
def test_bad_values_are_invalid_argument_naming_the_field(
    readings: TestServer, document: dict[str, Any], error: str
) -> None:
    payload = json.dumps(document).encode()
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(payload)
    assert error in str(caught.value)
    with pytest.raises(grpc.RpcError) as failed:
        _echo(readings, payload)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = failed.value.details() or ""
    assert details.startswith("request does not decode: ")
    assert error in details
    assert _echo(readings, b'{"sensor_id": "next"}') == b'{"sensorId":"next"}'


def test_nan_string_is_a_nan() -> None:
    assert math.isnan(CODEC.decode(b'{"ratio": "NaN"}').ratio)
    assert math.isnan(CODEC.decode(b'{"ratio": "NaN", "sensor_id": "x"}').ratio)


def test_what_the_codec_writes_is_unchanged() -> None:
    message = Reading(sensor_id="t1", seq=2**40, ratio=0.5, payload=RAW, code=3, step=7)
    assert CODEC.encode(message) == (
        b'{"sensorId":"t1","seq":1099511627776,"ratio":0.5,"payload":"++//AGFi","code":3,"step":7}'
    )
    assert CODEC.decode(CODEC.encode(message)) == message


def test_an_array_from_a_protojson_peer() -> None:
    codec = JsonCodec(Frame)
    pixels = np.arange(6, dtype=np.int16).reshape(2, 3)
    plain = {"dtype": "int16", "shape": ["2", "3"], "data": _url_safe(pixels.tobytes())}
    frame = codec.decode(json.dumps({"frame_id": "f", "pixels": plain}).encode())
    assert frame.frame_id == "f"
    assert frame.pixels is not None
    np.testing.assert_array_equal(frame.pixels, pixels)
    fp16 = np.array([1.5, -2.0], dtype=np.float16)
    quantized = {
        "dtype": "float16",
        "shape": [2],
        "data": _url_safe(fp16.tobytes()),
        "quantization": "FP16",
        "original_dtype": "float32",
    }
    decoded = codec.decode(json.dumps({"pixels": quantized}).encode()).pixels
    assert decoded is not None
    assert decoded.dtype == np.float32
    np.testing.assert_array_equal(decoded, fp16.astype(np.float32))
    with pytest.raises(DecodeError, match=r"- at `\$\.pixels`"):
        codec.decode(json.dumps({"pixels": {**plain, "shape": ["2", "x"]}}).encode())


def test_a_plain_struct_reads_the_json_name_protoc_gives() -> None:
    codec = JsonCodec(Legacy)
    assert codec.decode(b'{"sourcePath": "a"}') == Legacy(source_path="a")
    assert codec.decode(b'{"source_path": "a"}') == Legacy(source_path="a")
    assert codec.encode(Legacy(source_path="a")) == b'{"source_path":"a"}'


def test_a_deep_message_on_the_lenient_path_is_bounded() -> None:
    codec = JsonCodec(Node)
    deep = (
        b'{"node_id": "x", "child": ' * (MAX_JSON_DEPTH + 10) + b"{}" + b"}" * (MAX_JSON_DEPTH + 10)
    )
    with pytest.raises(DecodeError, match="nested too deeply"):
        codec.decode(deep)
    shallow = b'{"node_id": "x", "child": ' * 50 + b"{}" + b"}" * 50
    node: Node | None = codec.decode(shallow)
    levels = 0
    while node is not None and node.node_id == "x":
        node, levels = node.child, levels + 1
    assert levels == 50


def test_many_numeric_strings_in_a_list_decode() -> None:
    class Series(Message):
        values: list[Int64] = []

    count = 100_000
    payload = json.dumps({"values": [str(n) for n in range(count)]}).encode()
    assert JsonCodec(Series).decode(payload).values == list(range(count))


# --- non-finite floats: "NaN", "Infinity", "-Infinity" both ways


class Samples(Message):
    mean: float = 0.0
    values: list[float] = []
    by_sensor: dict[str, float] = {}
    pair: tuple[str, float] | None = None
    reading: Reading | None = None
    readings: list[Reading] = []
    weight: float | None = None
    note: str = ""
    free: dict[str, Any] = {}  # free JSON (google.protobuf.Struct): no float declared


SAMPLES = JsonCodec(Samples)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["NaN", "inf", "-inf"])
def test_a_non_finite_float_is_written_as_protobufs_json_format_writes_it(value: float) -> None:
    word = json_format.MessageToJson(wrappers_pb2.DoubleValue(value=value))
    assert CODEC.encode(Reading(ratio=value)) == b'{"ratio":' + word.encode() + b"}"
    assert SAMPLES.encode(Samples(weight=value)) == b'{"weight":' + word.encode() + b"}"


def test_non_finite_floats_are_words_wherever_a_float_is_declared() -> None:
    nan, inf = math.nan, math.inf
    message = Samples(
        mean=nan,
        values=[1.5, inf, -inf],
        by_sensor={"a": nan, "b": 2.0},
        pair=("p", -inf),
        reading=Reading(ratio=inf, sensor_id="null"),
        readings=[Reading(), Reading(ratio=nan)],
        note="null",
        free={"x": nan},
    )
    data = SAMPLES.encode(message)
    assert json.loads(data) == {
        "mean": "NaN",
        "values": [1.5, "Infinity", "-Infinity"],
        "bySensor": {"a": "NaN", "b": 2.0},
        "pair": ["p", "-Infinity"],
        "reading": {"sensorId": "null", "ratio": "Infinity"},
        "readings": [{}, {"ratio": "NaN"}],
        "note": "null",
        "free": {"x": None},  # free JSON keeps null, as protobuf refuses a NaN Value
    }
    back = SAMPLES.decode(data)
    assert math.isnan(back.mean) and back.values == [1.5, inf, -inf]
    assert math.isnan(back.by_sensor["a"]) and back.pair == ("p", -inf)
    assert back.reading == Reading(ratio=inf, sensor_id="null")
    assert math.isnan(back.readings[1].ratio)
    assert math.isnan(message.mean) and message.values[1] == inf  # the message is not changed


class Bounded(FrozenMessage, frozen=True):
    low: float = 0.0
    below: Bounded | None = None

    def __post_init__(self) -> None:
        if self.low > 1e300:  # a check that a word in place of the float would break
            raise ValueError("low is too high")


def test_words_in_frozen_recursive_and_checked_messages() -> None:
    codec = JsonCodec(Bounded)
    message = Bounded(below=Bounded(below=Bounded(low=-math.inf)))
    assert codec.encode(message) == b'{"below":{"below":{"low":"-Infinity"}}}'
    assert codec.decode(codec.encode(message)) == message
    assert codec.encode(Bounded(low=math.nan)) == b'{"low":"NaN"}'


def test_finite_floats_and_nulls_are_written_as_before() -> None:
    message = Samples(mean=0.25, values=[1e300, -2.5], note="null", free={"x": None})
    assert SAMPLES.encode(message) == (
        b'{"mean":0.25,"values":[1e300,-2.5],"note":"null","free":{"x":null}}'
    )


def test_non_finite_floats_round_trip_through_a_real_server(readings: TestServer) -> None:
    for word in ("NaN", "Infinity", "-Infinity"):
        answer = _echo(readings, b'{"ratio": "%s"}' % word.encode())
        assert answer == b'{"ratio":"%s"}' % word.encode()
    echoed = readings.client.call(Readings.Echo, Reading(ratio=-math.inf, history=[Inner()]))
    assert echoed == Reading(ratio=-math.inf, history=[Inner()])
    assert math.isnan(readings.client.call(Readings.Echo, Reading(ratio=math.nan)).ratio)


def test_a_bare_nan_is_not_json_and_is_invalid_argument(readings: TestServer) -> None:
    for bare in (b'{"ratio": NaN}', b'{"ratio": Infinity}', b'{"ratio": null}'):
        with pytest.raises(grpc.RpcError) as failed:
            _echo(readings, bare)
        assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _echo(readings, b'{"ratio": 0.5}') == b'{"ratio":0.5}'


class Tensor(Message):
    values: np.ndarray | None = None
    scale: float = 1.0


def test_a_message_with_a_non_finite_float_goes_as_json_not_as_a_frame() -> None:
    codec = JsonCodec(Tensor)
    big = np.zeros(4096, np.float32)  # over the frame threshold
    assert codec.encode_framed(Tensor(values=big))[:4] == b"\x00tA1"
    data = codec.encode_framed(Tensor(values=big, scale=math.inf))
    assert data.startswith(b"{") and data.endswith(b',"scale":"Infinity"}')
    back = codec.decode_framed(data)
    assert back.scale == math.inf and back.values is not None
    np.testing.assert_array_equal(back.values, big)
