"""Reflection resolves nested messages and map entries, not only top-level symbols.

grpcurl asks for a nested message (``describe jina.RequestProto.TrainRequestProto``)
or a map field's entry type by its full name; a reflection service that indexed
only top-level messages would answer NOT_FOUND.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from transport.examples.jina.protocol import JinaRPC
from transport.examples.migrator.protocol import Migrator
from transport.examples.runner.protocol import RunnerProtocol
from transport.examples.scaleout.protocol import CombinerClient, ModelService
from transport.proto.descriptor import FILE_CODEC
from transport.reflection.service import Reflection
from transport.reflection.wire import ServerReflectionRequest
from transport.runtime.process import DaemonProcess
from transport.runtime.wire import Runtime

from .test_reflection import _grpcurl, seed_server

DECLARED = (JinaRPC, Migrator, RunnerProtocol, CombinerClient, ModelService, Runtime)


def _nested(messages: Any, prefix: str) -> Iterator[tuple[str, bool]]:
    """Every message nested in ``messages`` (full name, whether it is a map entry)."""
    for message in messages:
        for inner in message.nested_type:
            name = f"{prefix}{message.name}.{inner.name}"
            yield name, bool(inner.options and inner.options.map_entry)
        yield from _nested(message.nested_type, f"{prefix}{message.name}.")


def test_every_nested_message_and_map_entry_resolves_to_the_file_declaring_it() -> None:
    reflection = Reflection(*DECLARED)
    seen: dict[str, bool] = {}
    for file_name, data in reflection._files.items():
        file = FILE_CODEC.decode(data)
        prefix = f"{file.package}." if file.package else ""
        for name, map_entry in _nested(file.message_type, prefix):
            seen[name] = map_entry
            answer = reflection.answer(ServerReflectionRequest(file_containing_symbol=name))
            assert answer.error_response is None, (name, answer.error_response)
            assert answer.file_descriptor_response is not None
            first = answer.file_descriptor_response.file_descriptor_proto[0]
            assert FILE_CODEC.decode(first).name == file_name
    assert "RequestProto.TrainRequestProto" in seen
    assert seen["transport.v1.InferRequest.InputsEntry"] is True  # a map entry
    assert sum(seen.values()) >= 2 and len(seen) - sum(seen.values()) >= 6


@pytest.mark.slow
def test_grpcurl_describes_a_nested_message_and_a_map_entry() -> None:
    with seed_server("jina") as jina:
        nested = _grpcurl(jina, "describe", "jina.RequestProto.TrainRequestProto")
    assert nested.returncode == 0, nested.stderr
    assert "message TrainRequestProto {" in nested.stdout
    with DaemonProcess("--listen", "127.0.0.1:0", "--instance-id", "") as daemon:
        entry = _grpcurl(daemon.endpoint, "describe", "transport.v1.InferRequest.InputsEntry")
    assert entry.returncode == 0, entry.stderr
    assert "map<string, .transport.v1.NdArray> inputs = 2;" in entry.stdout
