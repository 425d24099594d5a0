"""The ``.proto`` export: protoc accepts it, the seeds match their own ``.proto`` files,
and protoc-generated classes and the project's codec read each other's bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.protobuf_peers import descriptor_set, generated, messages
from transport import JsonCodec, ProtobufCodec
from transport.encoding.protobuf.schema import proto_name_of
from transport.examples.jina.protocol import JinaRPC, MessageProto
from transport.examples.migrator.protocol import Migrator
from transport.examples.runner.protocol import RunnerProtocol
from transport.examples.scaleout.protocol import CombinerClient, ModelService
from transport.proto import proto_file
from transport.proto.export import _Collected

pytestmark = pytest.mark.slow  # protoc and the command line in subprocesses

SEED_PROTOS = Path(__file__).parents[1] / "seed_protos"
#: Each seed file: its services and the package its .proto declares.
SEEDS: dict[str, tuple[list[type[object]], str | None]] = {
    "jina": ([JinaRPC], "jina"),  # with MessageProto, which no method uses
    "migrator": ([Migrator], None),
    "runner": ([RunnerProtocol], None),
    "scaleout": ([CombinerClient, ModelService], "scaleout"),
}


def _exported(seed: str) -> str:
    services, package = SEEDS[seed]
    return proto_file(*services, package=package, messages=_unused(seed))


def _unused(seed: str) -> tuple[type[Any], ...]:
    return (MessageProto,) if seed == "jina" else ()


def _shape(file: Any) -> dict[str, Any]:
    """What must agree between two .proto files: packages, messages, fields, enums, services."""
    shape: dict[str, Any] = {"package": file.package}

    def message(prefix: str, described: Any) -> None:
        name = f"{prefix}{described.name}"
        oneofs = [o.name for o in described.oneof_decl]
        shape[f"message {name}"] = {
            f.name: (
                f.number,
                f.type,
                f.label,
                f.type_name,
                oneofs[f.oneof_index] if f.HasField("oneof_index") else None,
            )
            for f in described.field
        }
        for nested in described.nested_type:
            message(f"{name}.", nested)
        for enum in described.enum_type:
            shape[f"enum {name}.{enum.name}"] = {v.name: v.number for v in enum.value}

    for described in file.message_type:
        message("", described)
    for enum in file.enum_type:
        shape[f"enum {enum.name}"] = {v.name: v.number for v in enum.value}
    for service in file.service:
        shape[f"service {service.name}"] = {
            m.name: (m.input_type, m.output_type, m.client_streaming, m.server_streaming)
            for m in service.method
        }
    return shape


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_the_export_of_each_seed_agrees_with_its_proto_file(seed: str, tmp_path: Path) -> None:
    (tmp_path / f"{seed}.proto").write_text(_exported(seed))
    ours = _shape(descriptor_set(tmp_path / f"{seed}.proto"))
    theirs = _shape(descriptor_set(SEED_PROTOS / f"{seed}.proto"))
    assert ours == theirs


def _message_types(seed: str) -> list[type[Any]]:
    collected = _Collected()
    for service in SEEDS[seed][0]:
        for method in vars(service)["__methods__"].values():
            collected.add_message(method.request_type)
            collected.add_message(method.response_type)
    for message_type in _unused(seed):
        collected.add_message(message_type)
    return list(collected.messages)


def _generated_class(seed: str, message_type: type[Any]) -> Any:
    found: Any = generated(f"{seed}_export", _exported(seed))
    for part in proto_name_of(message_type).split("."):
        found = getattr(found, part)
    return found


CASES = [(seed, t) for seed in sorted(SEEDS) for t in _message_types(seed)]
IDS = [f"{seed}-{proto_name_of(t)}" for seed, t in CASES]
EXAMPLES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("seed", "message_type"), CASES, ids=IDS)
@EXAMPLES
@given(data=st.data())
def test_generated_classes_read_what_the_codec_writes(
    seed: str, message_type: type[Any], data: st.DataObject
) -> None:
    message = data.draw(messages(message_type))
    codec = ProtobufCodec(message_type)
    peer = _generated_class(seed, message_type)()
    peer.ParseFromString(codec.encode(message))
    peer.DiscardUnknownFields()  # a field the peer did not recognise would be lost here
    assert codec.decode(peer.SerializeToString()) == message
    if seed in ("migrator", "scaleout"):  # no maps, whose order may differ: the same bytes
        assert codec.encode(message) == peer.SerializeToString()


@pytest.mark.parametrize(("seed", "message_type"), CASES, ids=IDS)
@EXAMPLES
@given(data=st.data())
def test_the_codec_reads_what_generated_classes_write(
    seed: str, message_type: type[Any], data: st.DataObject
) -> None:
    message = data.draw(messages(message_type))
    # The peer's message is built apart from our binary codec: from the proto3 JSON.
    peer = json_format.Parse(
        JsonCodec(message_type).encode(message), _generated_class(seed, message_type)()
    )
    assert ProtobufCodec(message_type).decode(peer.SerializeToString()) == message


def test_the_command_line_prints_the_proto_of_services(tmp_path: Path) -> None:
    module = "transport.examples.scaleout.protocol"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "transport",
            "proto",
            f"{module}:CombinerClient",
            f"{module}:ModelService",
            "--package",
            "scaleout",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == _exported("scaleout")
    (tmp_path / "scaleout.proto").write_text(done.stdout)
    assert "service ModelService" in done.stdout
    assert descriptor_set(tmp_path / "scaleout.proto").package == "scaleout"


def test_the_command_line_refuses_what_is_not_a_service() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "transport", "proto", "transport.examples.scaleout.protocol:Status"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "is not a Service declaration" in done.stderr
