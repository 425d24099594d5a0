"""Protobuf requests and responses from reflected descriptors, with the ``protobuf`` package.

Only ``call`` without declarations needs it: the descriptors a server reflects
become message classes of a private descriptor pool, which convert JSON to
protobuf bytes and back (proto3 JSON mapping, as grpcurl prints it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .client import ResolvedMethod

__all__ = ["converters"]


def converters(resolved: ResolvedMethod) -> tuple[Callable[[str], bytes], Callable[[bytes], str]]:
    """``(encode, decode)``: request JSON to protobuf bytes, response bytes to a JSON line."""
    from ..cli.call import CallError

    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
        from google.protobuf.message import DecodeError
    except ImportError:
        raise CallError(
            "calling by reflection over protobuf needs the protobuf package (pip install "
            "protobuf); or give --declarations MODULE, or --wire json for a transport server"
        ) from None
    pool = descriptor_pool.DescriptorPool()
    files = [descriptor_pb2.FileDescriptorProto.FromString(data) for data in resolved.files]
    added: set[str] = set()

    def add(file: Any) -> None:  # imports first, as the pool requires
        if file.name in added:
            return
        added.add(file.name)
        for dependency in file.dependency:
            for candidate in files:
                if candidate.name == dependency:
                    add(candidate)
        pool.Add(file)

    for file in files:
        add(file)
    method = resolved.method
    request_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(method.input_type.lstrip("."))
    )
    response_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(method.output_type.lstrip("."))
    )

    def encode(text: str) -> bytes:
        try:
            return bytes(json_format.Parse(text, request_class()).SerializeToString())
        except json_format.ParseError as exc:
            raise CallError(f"the request does not match {method.input_type}: {exc}") from None

    def decode(data: bytes) -> str:
        try:
            message = response_class.FromString(data)
        except DecodeError as exc:
            raise CallError(f"a response does not decode as {method.output_type}: {exc}") from None
        return json.dumps(json_format.MessageToDict(message), separators=(",", ":"))

    return encode, decode
