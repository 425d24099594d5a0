"""Codec costs per message, without a network: JSON, protobuf (ours) and upb.

``python benchmarks/codec.py [--quick]`` prints encode and decode µs per
message for the benchmark's ~1 KiB ``Reading``, a small ``Tick`` and a Jina
document with a 1 KiB embedding: transport's JSON codec, transport's protobuf
codec, and the ``protobuf`` package (upb) on its own objects, from classes
protoc-free descriptors give for the exported ``.proto``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from transport import JsonCodec, Message, Number, ProtobufCodec, Service, rpc
from transport.examples.jina.arrays import from_numpy
from transport.examples.jina.protocol import DocumentProto
from transport.proto import proto_file


class Reading(Message):
    """The ~1 KiB struct of the unary benchmark scenarios, numbered."""

    sensor_id: Annotated[str, Number(1)] = ""
    site: Annotated[str, Number(2)] = ""
    kind: Annotated[str, Number(3)] = ""
    unit: Annotated[str, Number(4)] = ""
    timestamp_ms: Annotated[int, Number(5)] = 0
    sequence: Annotated[int, Number(6)] = 0
    value: Annotated[float, Number(7)] = 0.0
    ok: Annotated[bool, Number(8)] = False
    samples: Annotated[list[float], Number(9)] = []
    note: Annotated[str, Number(10)] = ""


class Tick(Message):
    """One small message of the stream scenario, numbered."""

    sequence: Annotated[int, Number(1)] = 0
    value: Annotated[float, Number(2)] = 0.0
    label: Annotated[str, Number(3)] = ""


class CodecBench(Service, Protocol, name="bench.v1.CodecBench"):
    """The messages measured, as a service so they export to a .proto."""

    @rpc
    def Echo(self, request: Reading) -> Tick: ...

    @rpc
    def Docs(self, requests: Iterator[DocumentProto]) -> Iterator[DocumentProto]: ...


def _protoc() -> list[str]:
    """grpcio-tools' protoc with its well-known .proto files (the bench extra), else PATH's."""
    # As tests/tools.py finds it; a script of its own, this does not import the tests.
    spec = importlib.util.find_spec("grpc_tools")
    if spec is not None and spec.submodule_search_locations:
        include = Path(next(iter(spec.submodule_search_locations)), "_proto")
        return [sys.executable, "-m", "grpc_tools.protoc", f"-I{include}"]
    found = shutil.which("protoc")
    if found is None:
        sys.exit("no protoc: pip install grpcio-tools (the bench extra has it)")
    return [found]


def _upb_classes(*services: type[object], package: str) -> dict[str, Any]:
    """Message classes of the protobuf package for the exported ``.proto`` (protoc only here)."""
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "bench.proto").write_text(proto_file(*services, package=package))
        out = Path(scratch, "bench.pb")
        subprocess.run(
            [
                *_protoc(),
                f"-I{scratch}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                "bench.proto",
            ],
            check=True,
        )
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    names = {"Reading": "Reading", "Tick": "Tick", "DocumentProto": "DocumentProto"}
    return {
        key: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}"))
        for key, name in names.items()
    }


def _samples() -> dict[str, Any]:
    reading = Reading(
        sensor_id="5f0c2a3e-8d4b-4c1e-9a7f-2b6d1e3c4a5b",
        site="plant-north/line-4/cell-12",
        kind="temperature",
        unit="celsius",
        timestamp_ms=1_795_000_000_123,
        sequence=123_456,
        value=21.625,
        ok=True,
        samples=[15.0 + i * 0.3125 for i in range(48)],
        note="calibrated " + "x" * 400,
    )
    document = DocumentProto(
        id="doc-1", text="hello", embedding=from_numpy(np.linspace(0, 1, 256, dtype=np.float32))
    )
    return {
        "Reading": reading,
        "Tick": Tick(sequence=7, value=3.5, label="tick"),
        "DocumentProto": document,
    }


def _per_call(fn: Callable[[], object], quick: bool) -> float:
    number = 200 if quick else 20_000
    best = min(timeit.repeat(fn, number=number, repeat=3 if quick else 7))
    return best / number * 1e6


def main(argv: list[str] | None = None) -> int:
    """Print the table; ``--quick`` for a smoke run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few iterations (a smoke run)")
    args = parser.parse_args(argv)
    upb = _upb_classes(CodecBench, package="bench.v1")
    print("| message | codec | bytes | encode µs | decode µs |")
    print("|---|---|---|---|---|")
    for name, message in _samples().items():
        kind = type(message)
        json_codec, pb_codec = JsonCodec(kind), ProtobufCodec(kind)
        peer = upb[name].FromString(pb_codec.encode(message))
        for label, encode, decode in (
            ("transport json", json_codec.encode, json_codec.decode),
            ("transport protobuf", pb_codec.encode, pb_codec.decode),
            (
                "protobuf (upb), own objects",
                lambda _m, p=peer: p.SerializeToString(),
                upb[name].FromString,
            ),
        ):
            data = encode(message)
            enc = _per_call(functools.partial(encode, message), args.quick)
            dec = _per_call(functools.partial(decode, data), args.quick)
            print(f"| {name} | {label} | {len(data)} | {enc:.2f} | {dec:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
