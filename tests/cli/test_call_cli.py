"""``python -m transport list|call`` against seed servers, users' services and a protoc peer."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, Protocol

import grpc
import pytest
from grpc_reflection.v1alpha import reflection

from tests.call_app import Words
from tests.cli.test_demo import ROOT
from tests.cli.test_run import Run
from tests.conformance.test_reflection import seed_server
from tests.conformance.test_security import Pki, pki
from tests.protobuf_peers import generated
from transport import (
    Message,
    RawDetail,
    ResourceInfo,
    RpcError,
    Service,
    StatusCode,
    bind,
    rpc,
)
from transport.cli.unknown_fields import unknown_field
from transport.examples.scaleout.protocol import CombinerClient, ModelRequest, ModelService
from transport.proto import proto_file
from transport.reflection import add_reflection

__all__ = ["pki"]  # the fixture, shared with the security tests

pytestmark = pytest.mark.slow


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m transport ARGS...`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "transport", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def lines(out: str) -> list[Any]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def words() -> Iterator[str]:
    """A user's numbered service under ``python -m transport run``."""
    with Run("tests.call_app:binding", "--port", "0") as run:
        yield run.address


def test_list_a_seeds_services_and_methods() -> None:
    with seed_server("scaleout") as address:
        listed = cli("list", address)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines() == sorted(
            [
                CombinerClient.service_name(),
                ModelService.service_name(),
                # The same services on their upstream paths (package scaleout).
                "scaleout.CombinerClient",
                "scaleout.ModelService",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        )
        methods = cli("list", address, "ModelService")
        assert methods.stdout.splitlines() == ["ModelService.Upload", "ModelService.Download"]


def test_run_describes_the_users_service_and_health(words: str) -> None:
    listed = cli("list", words)
    assert listed.stdout.splitlines() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "words.v1.Words",
    ]
    health = cli("list", words, "grpc.health.v1.Health")
    assert health.stdout.splitlines() == [
        "grpc.health.v1.Health.Check",
        "grpc.health.v1.Health.Watch",
    ]
    checked = cli("call", words, "grpc.health.v1.Health/Check", "{}")  # health speaks protobuf
    assert checked.returncode == 0, checked.stderr
    assert lines(checked.stdout) == [{"status": "SERVING"}]


def test_every_call_kind_by_reflection_over_json(words: str) -> None:
    upper = cli("call", words, "words.v1.Words/Upper", '{"text": "hi"}', "--wire", "json")
    assert upper.returncode == 0, upper.stderr
    assert lines(upper.stdout) == [{"text": "HI", "count": 1}]
    split = cli("call", words, "words.v1.Words/Split", '{"text": "a b c"}', "--wire", "json")
    assert lines(split.stdout) == [
        {"text": "a"},
        {"text": "b", "count": 1},
        {"text": "c", "count": 2},
    ]
    join = cli(
        "call",
        words,
        "words.v1.Words/Join",
        "--wire",
        "json",
        stdin='{"text": "x"}\n\n{"text": "y"}\n',
    )
    assert lines(join.stdout) == [{"text": "x y", "count": 2}]
    echo = cli("call", words, "words.v1.Words.Echo", "--wire", "json", stdin='{"count": 1}\n{}\n')
    assert lines(echo.stdout) == [{"count": 2}, {"count": 1}]


def test_metadata_timeout_and_exit_statuses(words: str) -> None:
    greeted = cli(
        "call",
        words,
        "words.v1.Words/Upper",
        '{"text": "hi"}',
        "-H",
        "x-who: ann",
        "--wire",
        "json",
    )
    assert lines(greeted.stdout) == [{"text": "HI for ann", "count": 1}]
    refused = cli("call", words, "words.v1.Words/Upper", "{}", "--wire", "json")
    assert refused.returncode == 64 + 3  # grpcurl's rule: 64 + the status code
    assert refused.stderr == "ERROR: INVALID_ARGUMENT: no text to upper-case\n"
    unknown = cli("call", words, "words.v1.Words/Lower", "{}")
    assert unknown.returncode == 1
    assert "service words.v1.Words has no method Lower" in unknown.stderr
    mistyped = cli(
        "call", words, "words.v1.Words/Upper", '{"text": 5}', "--declarations", "tests.call_app"
    )
    assert mistyped.returncode == 1
    assert "Expected `str`, got `int` - at `$.text`" in mistyped.stderr
    with Run("tests.run_app:binding", "--port", "0") as run:
        held = cli(
            "call",
            run.address,
            "kv.v1.KV/Hold",
            '{"key": "/nonexistent"}',
            "--timeout",
            "0.5",
            "--declarations",
            "tests.run_app",
        )
        assert held.returncode == 64 + 4, held.stderr
        assert held.stderr.startswith("ERROR: DEADLINE_EXCEEDED")


def test_a_json_only_service_by_its_declarations() -> None:
    with Run("tests.run_app:binding", "--port", "0") as run:
        got = cli(
            "call", run.address, "kv.v1.KV/Get", '{"key": "k"}', "--declarations", "tests.run_app"
        )
        assert got.returncode == 0, got.stderr
        [value] = lines(got.stdout)
        assert value["value"] == "sync:k"
        listed = cli("list", run.address, "--declarations", "tests.run_app")
        assert listed.stdout == "kv.v1.KV\n"
        skewed = cli(
            "call", run.address, "kv.v1.KV/Get", '{"skew": "H1"}', "--declarations", "tests.run_app"
        )
        assert (skewed.returncode, skewed.stdout) == (1, "")
        assert skewed.stderr == (
            "error: the request does not match Key: Object contains unknown field `skew` "
            "- at `$` (Key's fields: key)\n"
        )
        misnamed = cli("call", run.address, "kv.v1.KV/Gte", "--declarations", "tests.run_app")
        assert misnamed.returncode == 1
        assert misnamed.stderr == "error: service kv.v1.KV has no method Gte; did you mean Get?\n"


def test_a_json_only_service_by_reflection_needs_no_flag() -> None:
    with Run("tests.run_app:binding", "--port", "0") as run:
        # Reflection lists kv.v1.KV but has no descriptor of it: the call goes over JSON.
        got = cli("call", run.address, "kv.v1.KV/Get", '{"key": "k"}')
        assert got.returncode == 0, got.stderr
        assert lines(got.stdout)[0]["value"] == "sync:k"
        piped = cli("call", run.address, "kv.v1.KV/Get", "-", stdin='{"key": "p"}\n')
        assert lines(piped.stdout)[0]["value"] == "sync:p", piped.stderr
        protobuf = cli("call", run.address, "kv.v1.KV/Get", "{}", "--wire", "protobuf")
        assert protobuf.returncode == 1
        assert "no protobuf descriptor" in protobuf.stderr
        assert "drop --wire protobuf to call it over JSON" in protobuf.stderr
        # The server does not say which methods it has: its own answer, and a hint.
        unknown = cli("call", run.address, "kv.v1.KV/Gte", "{}")
        assert unknown.returncode == 64 + 12  # UNIMPLEMENTED
        assert "--declarations MODULE checks the name Gte" in unknown.stderr
        methods = cli("list", run.address, "kv.v1.KV")
        assert methods.returncode == 1
        assert methods.stderr.startswith("error: kv.v1.KV is a JSON-only service")


def test_a_wrong_service_or_method_name_gets_a_suggestion(words: str) -> None:
    service = cli("call", words, "words.v1.Wrods/Upper", "{}")
    assert service.returncode == 1
    assert (
        service.stderr
        == "error: the server has no service words.v1.Wrods; did you mean words.v1.Words?\n"
    )
    short = cli("call", words, "Word/Upper", "{}")
    assert "did you mean words.v1.Words?" in short.stderr
    method = cli("call", words, "words.v1.Words/upper", "{}")
    assert method.returncode == 1
    assert (
        method.stderr == "error: service words.v1.Words has no method upper; did you mean Upper?\n"
    )
    listed = cli("list", words, "words.v1.Wrods", "--declarations", "tests.call_app")
    assert listed.stderr == (
        "error: tests.call_app does not declare words.v1.Wrods; did you mean words.v1.Words?\n"
    )
    declared = cli("call", words, "words.v1.Word/Upper", "--declarations", "tests.call_app")
    assert "the declarations have no service words.v1.Word; did you mean words.v1.Words?" in (
        declared.stderr
    )


def test_a_seed_stream_up_and_down_with_metadata() -> None:
    with seed_server("scaleout") as address:
        chunks = "".join(json.dumps({"data": text}) + "\n" for text in ("AAEC", "AwQ="))
        upload = cli(
            "call",
            address,
            "ModelService/Upload",
            "-H",
            "model-id: m1",
            "--declarations",
            "transport.examples.scaleout.protocol",
            stdin=chunks,
        )
        assert upload.returncode == 0, upload.stderr
        assert lines(upload.stdout) == [{"status": "OK", "message": "stored 5 bytes as m1"}]
        download = cli(
            "call", address, "ModelService/Download", '{"modelId": "m1"}', "--wire", "json"
        )
        assert download.returncode == 0, download.stderr
        received = [base64.b64decode(chunk["data"]) for chunk in lines(download.stdout)]
        assert b"".join(received) == bytes(range(5))


def _protoc_words_server() -> tuple[grpc.Server, int]:
    """``words.v1.Words`` on grpcio with protoc-generated classes and grpcio's own reflection."""
    module = generated("words_v1", proto_file(Words))
    word = module.Word

    def upper(request: Any, context: grpc.ServicerContext) -> Any:
        return word(text=request.text.upper(), count=1)

    def split(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for index, part in enumerate(request.text.split()):
            yield word(text=part, count=index)

    def join(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        parts = [request.text for request in requests]
        return word(text=" ".join(parts), count=len(parts))

    def echo(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            yield word(text=request.text, count=request.count + 1)

    codec: dict[str, Any] = {
        "request_deserializer": word.FromString,
        "response_serializer": word.SerializeToString,
    }
    handlers = {
        "Upper": grpc.unary_unary_rpc_method_handler(upper, **codec),
        "Split": grpc.unary_stream_rpc_method_handler(split, **codec),
        "Join": grpc.stream_unary_rpc_method_handler(join, **codec),
        "Echo": grpc.stream_stream_rpc_method_handler(echo, **codec),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("words.v1.Words", handlers),)
    )
    reflection.enable_server_reflection(("words.v1.Words", reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_every_call_kind_over_protobuf_against_a_protoc_generated_server() -> None:
    server, port = _protoc_words_server()
    address = f"127.0.0.1:{port}"
    try:
        listed = cli("list", address)  # grpcio's reflection, v1alpha only in older grpcio
        assert "words.v1.Words" in listed.stdout.splitlines(), listed.stderr
        upper = cli("call", address, "words.v1.Words/Upper", '{"text": "hi"}')
        assert upper.returncode == 0, upper.stderr
        assert lines(upper.stdout) == [{"text": "HI", "count": 1}]
        split = cli("call", address, "words.v1.Words/Split", '{"text": "a b"}')
        assert lines(split.stdout) == [{"text": "a"}, {"text": "b", "count": 1}]
        join = cli("call", address, "words.v1.Words/Join", stdin='{"text": "x"}\n{"text": "y"}\n')
        assert lines(join.stdout) == [{"text": "x y", "count": 2}]
        echo = cli("call", address, "words.v1.Words/Echo", "-", stdin='{"count": 4}\n')
        assert lines(echo.stdout) == [{"count": 5}]
        wrong = cli("call", address, "words.v1.Words/Upper", '{"txt": "hi"}')
        assert wrong.returncode == 1
        assert wrong.stderr == (  # as --declarations words it
            "error: the request does not match words.v1.Word: Object contains unknown field "
            "`txt` - at `$` (words.v1.Word's fields: text, count)\n"
        )
    finally:
        server.stop(grace=None)


def test_protobuf_by_reflection_against_a_transport_server(words: str) -> None:
    upper = cli("call", words, "words.v1.Words/Upper", '{"text": "hi"}')
    assert upper.returncode == 0, upper.stderr
    assert lines(upper.stdout) == [{"text": "HI", "count": 1}]


def test_tls(pki: Pki, tmp_path: Path) -> None:
    for name, data in {
        "cert.pem": pki.server.certificate,
        "key.pem": pki.server.key,
        "ca.pem": pki.ca,
    }.items():
        (tmp_path / name).write_bytes(data)
    tls = ("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    with Run("tests.call_app:binding", "--port", "0", *tls) as run:
        trusted = ("--tls", "--tls-ca-cert", str(tmp_path / "ca.pem"))
        listed = cli("list", run.address, *trusted)
        assert "words.v1.Words" in listed.stdout.splitlines(), listed.stderr
        upper = cli(
            "call", run.address, "words.v1.Words/Upper", '{"text": "s"}', *trusted, "--wire", "json"
        )
        assert lines(upper.stdout) == [{"text": "S", "count": 1}]
        plaintext = cli("list", run.address, "--timeout", "5")
        assert plaintext.returncode == 1
        assert "UNAVAILABLE" in plaintext.stderr


def test_a_server_without_reflection_and_bad_flags() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        listed = cli("list", f"127.0.0.1:{port}")
        assert listed.returncode == 1
        assert listed.stderr == "error: the server does not support the reflection API\n"
    finally:
        server.stop(grace=None)
    assert "need --tls" in cli("list", "127.0.0.1:1", "--tls-ca-cert", "x").stderr
    assert "is not KEY:VALUE" in cli("call", "127.0.0.1:1", "a/b", "-H", "nocolon").stderr
    assert "is not SERVICE/METHOD" in cli("call", "127.0.0.1:1", "nomethod").stderr


class Item(Message):
    key: str = ""
    tags: list[Item] = []


class Items(Service, Protocol, name="items.v1.Items"):
    @rpc
    def Find(self, request: Item) -> Item: ...

    @rpc
    def Split(self, request: Item) -> Iterator[Item]: ...

    @rpc
    def Join(self, requests: Iterator[Item]) -> Item: ...


class ItemsServer:
    def Find(self, request: Item) -> Item:
        raise RpcError(
            StatusCode.NOT_FOUND,
            "no such item",
            {"key": request.key, "near": ["a"]},
            error_details=[
                ResourceInfo(resource_type="item", resource_name=request.key),
                RawDetail(type_url="type.googleapis.com/acme.Hint", value=b"\x01"),
            ],
        )

    def Split(self, request: Item) -> Iterator[Item]:
        for key in request.key.split():
            yield Item(key=key)

    def Join(self, requests: Iterator[Item]) -> Item:
        return Item(key="+".join(request.key for request in requests))


def test_every_kind_of_a_json_only_service_and_an_errors_details() -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    binding = bind(Items, ItemsServer())
    binding.add_to(server)
    add_reflection(server, binding)
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        missing = cli("call", address, "items.v1.Items/Find", '{"key": "k"}')
        # Reflection does not describe the methods: each goes as a bidirectional stream.
        split = cli("call", address, "items.v1.Items/Split", '{"key": "a b"}')
        assert lines(split.stdout) == [{"key": "a"}, {"key": "b"}], split.stderr
        joined = cli(
            "call", address, "items.v1.Items/Join", "-", stdin='{"key": "x"}\n{"key": "y"}\n'
        )
        assert lines(joined.stdout) == [{"key": "x+y"}], joined.stderr
    finally:
        server.stop(grace=None)
    assert missing.returncode == 64 + 5, missing.stderr
    assert missing.stderr == (
        'ERROR: NOT_FOUND: no such item\ndetails: {"key": "k", "near": ["a"]}\n'
        'details: {"@type": "type.googleapis.com/google.rpc.ResourceInfo", '
        '"resourceType": "item", "resourceName": "k"}\n'
        'details: {"@type": "type.googleapis.com/acme.Hint", "value": "AQ=="}\n'
    )


def test_unknown_fields_at_any_depth_and_the_names_a_server_reads() -> None:
    assert unknown_field({"key": "k", "tags": [{"key": "t"}]}, Item) == ""
    assert unknown_field({"tags": [{}, {"kye": "t"}]}, Item) == (
        "Object contains unknown field `kye` - at `$.tags[1]` (Item's fields: key, tags)"
    )
    # The .proto name and lowerCamelCase of a field are its names too, as the server reads them.
    assert unknown_field({"model_id": "m"}, ModelRequest) == ""
    assert unknown_field({"modelId": "m"}, ModelRequest) == ""
    assert "unknown field `modelID`" in unknown_field({"modelID": "m"}, ModelRequest)
