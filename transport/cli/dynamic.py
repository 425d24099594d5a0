"""Protobuf requests and responses from reflected descriptors, with the ``protobuf`` package.

Only ``call`` without declarations needs it: the descriptors a server reflects
become message classes of a private descriptor pool, which convert JSON to
protobuf bytes and back (proto3 JSON mapping, as grpcurl prints it).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

from ..reflection.client import ResolvedMethod
from . import CallError

__all__ = ["converters"]


def converters(resolved: ResolvedMethod) -> tuple[Callable[[str], bytes], Callable[[bytes], str]]:
    """``(encode, decode)``: request JSON to protobuf bytes, response bytes to a JSON line."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
        from google.protobuf.message import DecodeError
    except ImportError:
        raise CallError(
            "calling by reflection over protobuf needs the protobuf package (pip install "
            "protobuf); or give --declarations MODULE, or --wire json for a transport server"
        ) from None
    pool = descriptor_pool.DescriptorPool()
    method = resolved.method
    where = "a file"
    try:
        files = [descriptor_pb2.FileDescriptorProto.FromString(data) for data in resolved.files]
        for file in _imports_first(files):
            where = file.name
            pool.Add(file)
        where = "the method's types"
        request_class = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(method.input_type.lstrip("."))
        )
        response_class = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(method.output_type.lstrip("."))
        )
    except (TypeError, KeyError, ValueError, DecodeError) as exc:
        # What the pool refuses (a missing type or import, a duplicate field):
        # the server's descriptors, not this program, are at fault.
        raise CallError(
            f"the server's descriptors of {resolved.service}/{method.name} do not load into "
            f"the protobuf package ({where}: {_pool_error(exc)}); --declarations MODULE "
            "calls without them"
        ) from None

    def encode(text: str) -> bytes:
        try:
            return bytes(json_format.Parse(text, request_class()).SerializeToString())
        except json_format.ParseError as exc:
            what = method.input_type.lstrip(".")
            raise CallError(f"the request does not match {what}: {_parse_error(exc)}") from None

    def decode(data: bytes) -> str:
        try:
            message = response_class.FromString(data)
        except DecodeError as exc:
            raise CallError(f"a response does not decode as {method.output_type}: {exc}") from None
        return json.dumps(json_format.MessageToDict(message), separators=(",", ":"))

    return encode, decode


def _imports_first(files: list[Any]) -> list[Any]:
    """``files`` ordered so each comes after the files it imports, as the pool requires.

    A loop, not a recursion: a server may chain a thousand imports.
    """
    by_name = {file.name: file for file in files}
    ordered: list[Any] = []
    entered: set[str] = set()  # an import cycle is left for the pool to refuse
    for root in files:
        stack = [(root, False)]
        while stack:
            file, imports_placed = stack.pop()
            if imports_placed:
                ordered.append(file)
                continue
            if file.name in entered:
                continue
            entered.add(file.name)
            stack.append((file, True))
            stack += [(by_name[name], False) for name in file.dependency if name in by_name]
    return ordered


def _pool_error(exc: Exception) -> str:
    """The pool's complaint, without its preamble, on one line."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = text.removeprefix("Couldn't build proto file into descriptor pool: ")
    return " ".join(text.split())


# json_format's words for an unknown field (protobuf 3.20 to 6), over two lines.
_UNKNOWN_FIELD = re.compile(
    r'Message type "(?P<type>[^"]+)" has no field named "(?P<field>[^"]+)" at "(?P<at>[^"]*)"\.'
    r'\s*Available Fields\(except extensions\): "(?P<fields>.*)"',
    re.DOTALL,
)


def _parse_error(exc: Exception) -> str:
    """json_format's error on one line; an unknown field in the words of ``--declarations``."""
    text = str(exc)
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown is None:
        return " ".join(text.split())
    root, _, rest = unknown["at"].partition(".")
    bracket = root.find("[")
    path = "$" + (root[bracket:] if bracket >= 0 else "") + (f".{rest}" if rest else "")
    try:
        fields = ", ".join(str(name) for name in ast.literal_eval(unknown["fields"]))
    except (ValueError, SyntaxError):
        fields = unknown["fields"]
    return (
        f"Object contains unknown field `{unknown['field']}` - at `{path}` "
        f"({unknown['type']}'s fields: {fields or 'none'})"
    )
