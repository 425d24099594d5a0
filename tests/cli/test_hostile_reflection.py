"""``list`` and ``call`` against hostile reflection: floods, broken descriptors, endless imports.

The server here is hand-made on grpcio's generic handlers, answering whatever
each test scripts: nothing a real reflection service would refuse to send.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.cli.test_demo import ROOT
from tests.eventually import eventually
from transport.proto.descriptor import FILE_CODEC
from transport.proto.descriptor_messages import (
    DescriptorProto,
    FieldDescriptorProto,
    FileDescriptorProto,
    MethodDescriptorProto,
    ServiceDescriptorProto,
)
from transport.reflection.client import MAX_FILE_BYTES, MAX_FILES, REFLECTION_TIMEOUT
from transport.reflection.wire import (
    REQUEST_CODEC,
    RESPONSE_CODEC,
    ErrorResponse,
    FileDescriptorResponse,
    ListServiceResponse,
    ServerReflectionRequest,
    ServerReflectionResponse,
    ServiceResponse,
)

pytestmark = pytest.mark.slow

SERVICE = "hostile.v1.Echo"
FILE = "hostile/v1/echo.proto"
#: What the flooding server sends at most, so that a client that reads it all ends.
FLOOD = 300
MiB = 1024 * 1024

#: The answers to one question: ``(question, context) -> encoded answers``.
Script = Callable[[ServerReflectionRequest, grpc.ServicerContext], Iterator[bytes]]


def _file(
    name: str = FILE,
    *,
    dependency: list[str] | None = None,
    fields: list[FieldDescriptorProto] | None = None,
    service: bool = True,
    padding: int = 0,
) -> bytes:
    """A proto3 file: ``Item`` with a string ``text`` and the service ``Echo/Get(Item) Item``."""
    text = FieldDescriptorProto(name="text", number=1, label=1, type=9, json_name="text")
    messages = [DescriptorProto(name="Item", field=[text] if fields is None else fields)]
    if padding:  # one more message, with a long name: a big file
        messages.append(DescriptorProto(name="P" + "a" * padding))
    get = MethodDescriptorProto(
        name="Get", input_type=".hostile.v1.Item", output_type=".hostile.v1.Item"
    )
    return FILE_CODEC.encode(
        FileDescriptorProto(
            name=name,
            package="hostile.v1" if service else name.replace("/", "_").removesuffix(".proto"),
            dependency=dependency or [],
            message_type=messages,
            service=[ServiceDescriptorProto(name="Echo", method=[get])] if service else [],
            syntax="proto3",
        )
    )


def _files(*files: bytes) -> bytes:
    return RESPONSE_CODEC.encode(
        ServerReflectionResponse(
            file_descriptor_response=FileDescriptorResponse(file_descriptor_proto=list(files))
        )
    )


def _not_found(what: str) -> bytes:
    return RESPONSE_CODEC.encode(
        ServerReflectionResponse(
            error_response=ErrorResponse(error_code=5, error_message=f"{what} not found")
        )
    )


LISTED = RESPONSE_CODEC.encode(
    ServerReflectionResponse(
        list_services_response=ListServiceResponse(service=[ServiceResponse(name=SERVICE)])
    )
)


def _honest(request: ServerReflectionRequest, files: dict[str, bytes]) -> bytes:
    """The answer a plain server gives: the services, or the file asked for."""
    if request.list_services is not None:
        return LISTED
    if request.file_containing_symbol is not None:
        return _files(files[FILE])
    name = request.file_by_filename or ""
    return _files(files[name]) if name in files else _not_found(name)


@dataclass
class Hostile:
    """The fake server: its address, and how many answers and questions it has seen."""

    address: str
    answers: int = 0
    questions: int = 0


@contextmanager
def hostile_server(script: Script) -> Iterator[Hostile]:
    """A server on 127.0.0.1 whose reflection answers as ``script`` says; Echo/Get echoes."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    hostile = Hostile("")
    lock = threading.Lock()

    def info(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[bytes]:
        for request in requests:
            with lock:
                hostile.questions += 1
            for answer in script(request, context):
                with lock:
                    hostile.answers += 1
                yield answer

    reflection: grpc.RpcMethodHandler[Any, bytes] = grpc.stream_stream_rpc_method_handler(
        info, request_deserializer=REQUEST_CODEC.decode
    )
    echo: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
        lambda request, context: request
    )
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": reflection}
            ),
            grpc.method_handlers_generic_handler(
                "grpc.reflection.v1alpha.ServerReflection", {"ServerReflectionInfo": reflection}
            ),
            grpc.method_handlers_generic_handler(SERVICE, {"Get": echo}),
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    hostile.address = f"127.0.0.1:{port}"
    try:
        yield hostile
    finally:
        server.stop(grace=None)


@dataclass
class Ran:
    """A finished CLI process: as ``subprocess.CompletedProcess``, with its time and peak RSS."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int  # bytes


def cli(tmp_path: Path, *args: str, bound: float = 60.0) -> Ran:
    """``python -m transport ARGS...``, its peak RSS read from the kernel as it is reaped."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "transport", *args], stdout=stdout, stderr=stderr, cwd=ROOT
        )
    reaped: list[tuple[int, Any]] = []

    def ended() -> bool:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            reaped.append((status, usage))
        return bool(pid)

    try:
        eventually(ended, f"transport {' '.join(args)} ends", bound=bound)
    except AssertionError:
        process.kill()
        process.wait()
        raise
    status, usage = reaped[0]
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Ran(
        process.returncode,
        out.read_text(),
        err.read_text(),
        time.monotonic() - started,
        usage.ru_maxrss * 1024,  # KiB on Linux
    )


def _flood(request: ServerReflectionRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
    """The right answer, then 1 MiB answers until the client goes (or FLOOD of them)."""
    yield _honest(request, {FILE: _file()})
    junk = _files(b"\0" * MiB)
    for _ in range(FLOOD):
        if not context.is_active():
            return
        yield junk


def test_a_server_that_keeps_answering_is_read_once(tmp_path: Path) -> None:
    with hostile_server(_flood) as server:
        listed = cli(tmp_path, "list", server.address)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines() == [SERVICE]
        methods = cli(tmp_path, "list", server.address, SERVICE)
        assert methods.stdout.splitlines() == [f"{SERVICE}.Get"], methods.stderr
        called = cli(tmp_path, "call", server.address, f"{SERVICE}/Get", '{"text": "hi"}')
        assert called.returncode == 0, called.stderr
        assert called.stdout.splitlines() == ['{"text":"hi"}']
        for ran in (listed, methods, called):
            # Reading the flood takes 300 MiB and more; the program alone about 60.
            assert ran.peak_rss < 200 * MiB, f"peak RSS {ran.peak_rss / MiB:.0f} MiB"
            assert ran.seconds < 30
        # Each cancelled stream is left with what flow control let through.
        assert server.answers < 60


def test_a_server_that_never_answers_is_given_up_on(tmp_path: Path) -> None:
    def silent(request: ServerReflectionRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        gone = threading.Event()
        context.add_callback(gone.set)
        gone.wait(60)
        yield from ()

    with hostile_server(silent) as server:
        listed = cli(tmp_path, "list", server.address)  # no --timeout: the default bound
    assert listed.returncode == 1
    assert listed.stderr == (
        f"error: the server's reflection did not answer within {REFLECTION_TIMEOUT:g} s "
        "(--timeout SECONDS sets the bound)\n"
    )
    assert listed.seconds < REFLECTION_TIMEOUT + 20


def _plain(files: dict[str, bytes]) -> Script:
    """Answers once to each question, from ``files`` (which may be broken)."""

    def script(request: ServerReflectionRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield _honest(request, files)

    return script


MISSING = FieldDescriptorProto(
    name="other", number=2, label=1, type=11, type_name=".hostile.v1.Missing", json_name="other"
)
TWICE = FieldDescriptorProto(name="again", number=1, label=1, type=9, json_name="again")
TEXT = FieldDescriptorProto(name="text", number=1, label=1, type=9, json_name="text")


@pytest.mark.parametrize(
    ("files", "why"),
    [
        pytest.param(
            {FILE: _file(fields=[TEXT, MISSING])},
            f"({FILE}: couldn't resolve name '.hostile.v1.Missing')",
            id="a missing type",
        ),
        pytest.param(
            {FILE: _file(fields=[TEXT, TWICE])},
            f"({FILE}: duplicate field number (1))",
            id="a duplicate field",
        ),
        pytest.param(
            {
                FILE: _file(dependency=["a.proto"]),
                "a.proto": _file("a.proto", dependency=["b.proto"], service=False),
                "b.proto": _file("b.proto", dependency=["a.proto"], service=False),
            },
            "(b.proto: Depends on file 'a.proto', but it has not been loaded)",
            id="an import cycle",
        ),
    ],
)
def test_descriptors_the_protobuf_package_refuses_are_an_error(
    tmp_path: Path, files: dict[str, bytes], why: str
) -> None:
    with hostile_server(_plain(files)) as server:
        called = cli(tmp_path, "call", server.address, f"{SERVICE}/Get", '{"text": "hi"}')
    assert called.returncode == 1
    assert "Traceback" not in called.stderr
    assert called.stderr.startswith(
        f"error: the server's descriptors of {SERVICE}/Get do not load into the protobuf package"
    )
    assert why in called.stderr
    assert called.stderr.endswith("; --declarations MODULE calls without them\n")


def test_an_import_the_server_does_not_describe_is_an_error(tmp_path: Path) -> None:
    with hostile_server(_plain({FILE: _file(dependency=["gone.proto"])})) as server:
        called = cli(tmp_path, "call", server.address, f"{SERVICE}/Get", '{"text": "hi"}')
        assert called.returncode == 1
        assert called.stderr == (
            f"error: {FILE} imports gone.proto, which the server does not describe\n"
        )
        listed = cli(tmp_path, "list", server.address, SERVICE)  # listing needs no imports
        assert listed.stdout.splitlines() == [f"{SERVICE}.Get"], listed.stderr


def test_imports_the_answer_leaves_out_are_asked_for(tmp_path: Path) -> None:
    # As grpcio's reflection before 1.36 answered: each file alone.
    item = FieldDescriptorProto(
        name="item", number=2, label=1, type=11, type_name=".parts.Item", json_name="item"
    )
    files = {
        FILE: _file(dependency=["parts.proto"], fields=[TEXT, item]),
        "parts.proto": _file("parts.proto", service=False),
    }
    with hostile_server(_plain(files)) as server:
        request = '{"text": "hi", "item": {"text": "there"}}'
        called = cli(tmp_path, "call", server.address, f"{SERVICE}/Get", request)
        assert called.returncode == 0, called.stderr
        assert called.stdout.splitlines() == ['{"text":"hi","item":{"text":"there"}}']
        assert server.questions == 2  # the symbol, then parts.proto
        # Over JSON the imports are not needed, and not asked for.
        json = cli(tmp_path, "call", server.address, f"{SERVICE}/Get", "{}", "--wire", "json")
        assert json.stdout == "{}\n", json.stderr
        assert server.questions == 3


def _endless(padding: int) -> Script:
    """Each file imports the next one, which the server makes up when asked."""

    def script(request: ServerReflectionRequest, context: grpc.ServicerContext) -> Iterator[bytes]:
        if request.file_by_filename is None:
            yield _honest(request, {FILE: _file(dependency=["dep0.proto"])})
            return
        number = int(request.file_by_filename.removeprefix("dep").removesuffix(".proto"))
        following = [f"dep{number + 1}.proto"]
        name = request.file_by_filename
        yield _files(_file(name, dependency=following, service=False, padding=padding))

    return script


@pytest.mark.parametrize(
    ("padding", "most"),
    [
        pytest.param(0, MAX_FILES, id="many files"),
        pytest.param(MiB, MAX_FILE_BYTES // MiB, id="large files"),
    ],
)
def test_endless_imports_stop_at_the_cap(tmp_path: Path, padding: int, most: int) -> None:
    with hostile_server(_endless(padding)) as server:
        called = cli(
            tmp_path, "call", server.address, f"{SERVICE}/Get", '{"text": "hi"}', "--timeout", "60"
        )
        assert called.returncode == 1
        assert called.stderr == (
            f"error: the server describes more than {MAX_FILES} files or "
            f"{MAX_FILE_BYTES // MiB} MiB of them (the CLI's cap on reflected descriptors); "
            "--declarations MODULE calls without reflection\n"
        )
        assert server.questions <= most + 1
        assert called.peak_rss < 200 * MiB, f"peak RSS {called.peak_rss / MiB:.0f} MiB"
