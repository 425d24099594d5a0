"""What travels in each scenario, declared once for every variant.

The transport declares typed structs (numbered, so that they travel as
protobuf too, in the ``transport-protobuf`` variant); the protobuf variant builds messages of
the same shape from descriptors at run time (``descriptor_pb2`` and
``message_factory``, no protoc); the floor sends bytes of the same size as the
transport's JSON.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Annotated, Any, Protocol

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from transport import Message, Service, rpc
from transport.encoding.chunks import Chunk
from transport.encoding.protobuf import Number
from transport.runtime.wire import InferRequest

SERVICE = "bench.v1.Bench"
ECHO = f"/{SERVICE}/Echo"
TICKS = f"/{SERVICE}/Ticks"
ARRAY = f"/{SERVICE}/Array"
COLLECT = f"/{SERVICE}/Collect"
CHAT = f"/{SERVICE}/Chat"
TRICKLE = f"/{SERVICE}/Trickle"
#: The pause between two messages of the trickle scenario, in seconds.
TRICKLE_INTERVAL = 0.002


class Reading(Message):
    """The ~1 KiB struct of ten fields of the unary scenarios."""

    sensor_id: Annotated[str, Number(1)]
    site: Annotated[str, Number(2)]
    kind: Annotated[str, Number(3)]
    unit: Annotated[str, Number(4)]
    timestamp_ms: Annotated[int, Number(5)]
    sequence: Annotated[int, Number(6)]
    value: Annotated[float, Number(7)]
    ok: Annotated[bool, Number(8)]
    samples: Annotated[list[float], Number(9)]
    note: Annotated[str, Number(10)]


class TickRequest(Message):
    """Ask for ``count`` ticks."""

    count: Annotated[int, Number(1)]


class Tick(Message):
    """One small message of the stream scenario."""

    sequence: Annotated[int, Number(1)]
    value: Annotated[float, Number(2)]
    label: Annotated[str, Number(3)]


class Tensor(Message):
    """An array round-tripped by the ndarray scenario."""

    name: Annotated[str, Number(1)]
    array: Annotated[np.ndarray, Number(2)]


class Bench(Service, Protocol, name=SERVICE):
    """The benchmark service every variant serves."""

    @rpc
    def Echo(self, request: Reading) -> Reading: ...

    @rpc
    def Ticks(self, request: TickRequest) -> Iterator[Tick]: ...

    @rpc
    def Array(self, request: Tensor) -> Tensor: ...

    @rpc
    def ArrayChunks(self, requests: Iterator[Chunk]) -> Iterator[Chunk]: ...

    @rpc
    def Collect(self, requests: Iterator[Tick]) -> TickRequest: ...

    @rpc
    def Chat(self, requests: Iterator[Tick]) -> Iterator[Tick]: ...

    @rpc
    def Trickle(self, request: TickRequest) -> Iterator[Tick]: ...


def reading() -> Reading:
    """A reading whose JSON is about 1 KiB."""
    rng = random.Random(7)
    return Reading(
        sensor_id="5f0c2a3e-8d4b-4c1e-9a7f-2b6d1e3c4a5b",
        site="plant-north/line-4/cell-12",
        kind="temperature",
        unit="celsius",
        timestamp_ms=1_795_000_000_123,
        sequence=123_456,
        value=21.625,
        ok=True,
        samples=[round(rng.uniform(15, 30), 4) for _ in range(48)],
        note="calibrated " + "x" * 400,
    )


def tick(sequence: int) -> Tick:
    """The ``sequence``-th tick."""
    return Tick(sequence=sequence, value=sequence * 0.5, label="tick")


def stamped(sequence: int) -> Tick:
    """A tick whose value is when it was made (``time.monotonic()``, one clock for all)."""
    return Tick(sequence=sequence, value=time.monotonic(), label="tick")


def tensor(nbytes: int) -> Tensor:
    """A float32 array of ``nbytes`` bytes."""
    return Tensor(name="x", array=np.arange(nbytes // 4, dtype=np.float32))


def infer_request(handle: str) -> InferRequest:
    """An owner-runtime Infer of a small array (1 KiB of float32)."""
    return InferRequest(handle=handle, inputs={"x": np.linspace(0, 1, 256, dtype=np.float32)})


def _file() -> descriptor_pb2.FileDescriptorProto:
    t = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="bench.proto", package="bench.v1", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int]) -> None:
        described = proto.message_type.add(name=name)
        for number, (field, kind, label) in enumerate(fields, start=1):
            described.field.add(name=field, number=number, type=kind, label=label)

    one, many = t.LABEL_OPTIONAL, t.LABEL_REPEATED
    message(
        "Reading",
        ("sensor_id", t.TYPE_STRING, one),
        ("site", t.TYPE_STRING, one),
        ("kind", t.TYPE_STRING, one),
        ("unit", t.TYPE_STRING, one),
        ("timestamp_ms", t.TYPE_INT64, one),
        ("sequence", t.TYPE_INT64, one),
        ("value", t.TYPE_DOUBLE, one),
        ("ok", t.TYPE_BOOL, one),
        ("samples", t.TYPE_DOUBLE, many),
        ("note", t.TYPE_STRING, one),
    )
    message("TickRequest", ("count", t.TYPE_INT64, one))
    message(
        "Tick",
        ("sequence", t.TYPE_INT64, one),
        ("value", t.TYPE_DOUBLE, one),
        ("label", t.TYPE_STRING, one),
    )
    message(
        "Tensor",
        ("name", t.TYPE_STRING, one),
        ("dtype", t.TYPE_STRING, one),
        ("shape", t.TYPE_INT64, many),
        ("data", t.TYPE_BYTES, one),
    )
    return proto


def protobuf_classes() -> dict[str, Any]:
    """The protobuf message classes of the shapes above, by message name."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    names = ("Reading", "TickRequest", "Tick", "Tensor")
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"bench.v1.{name}"))
        for name in names
    }


def protobuf_reading(classes: dict[str, Any]) -> Any:
    """The protobuf twin of :func:`reading`."""
    source = reading()
    return classes["Reading"](
        sensor_id=source.sensor_id,
        site=source.site,
        kind=source.kind,
        unit=source.unit,
        timestamp_ms=source.timestamp_ms,
        sequence=source.sequence,
        value=source.value,
        ok=source.ok,
        samples=source.samples,
        note=source.note,
    )
