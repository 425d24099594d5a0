"""``python -m transport list|call``: a grpcurl for services, from reflection or declarations.

``list HOST:PORT [SERVICE]`` prints the services a server declares (or a
service's methods); ``call HOST:PORT SERVICE/METHOD [JSON]`` calls one and
prints each response as a JSON line. The method is found by server reflection,
or in the ``Service`` declarations of ``--declarations MODULE``.

Wires: with declarations the call goes over the JSON wire (every ``transport``
server speaks it; the request is checked against the declaration before it is
sent, unknown fields included). With reflection only it goes over protobuf,
converted by the ``protobuf`` package from the reflected descriptors (any gRPC
server speaks it); without that package, ``--declarations`` or ``--wire json``
is the way. A service the server lists but does not describe (a ``transport``
service declared without field numbers) is called over JSON. Exit status as
grpcurl's: 0 when the call ends OK, 64 + the status code when it ends in an
error (``NOT_FOUND`` is 69), 1 when it could not be made.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import grpc

from .._status_map import client_errors
from ..encoding.json_codec import JsonCodec
from ..encoding.rich_status import RawDetail
from ..error_details import packed
from ..errors import DecodeError, RpcError
from ..reflection.client import (
    REFLECTION_TIMEOUT,
    NoDescriptorError,
    ReflectionError,
    Reflector,
    did_you_mean,
)
from ..security import channel_credentials
from ..service import Method, Service
from ..status import StatusCode
from . import CallError
from .dynamic import converters
from .unknown_fields import unknown_field

__all__ = ["add_commands", "call_command", "list_command"]

#: Exit status when the call could not be made (bad input, no such method, no reflection).
FAILED = 1
#: Added to a gRPC status code for the exit status of a call that ended in an error.
STATUS_BASE = 64

Encode = Callable[[str], bytes]
Decode = Callable[[bytes], str]
#: Whether the method takes a stream and returns one; ``None`` when the server does not say.
Streams = tuple[bool, bool] | None


def add_commands(commands: Any) -> None:
    """Add ``list`` and ``call`` to the ``python -m transport`` sub-commands."""
    listing = commands.add_parser(
        "list",
        help="list a server's services, or a service's methods",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("target", metavar="HOST:PORT")
    listing.add_argument("service", nargs="?", metavar="SERVICE", help="list its methods")
    _common_flags(listing)
    listing.set_defaults(run=list_command)
    call = commands.add_parser(
        "call",
        help="call a method with JSON; print JSON lines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument("target", metavar="HOST:PORT")
    call.add_argument("method", metavar="SERVICE/METHOD")
    call.add_argument(
        "data",
        nargs="?",
        metavar="JSON",
        help="the request ('-': JSON lines from stdin; default {} or, for a client stream, stdin)",
    )
    call.add_argument(
        "--wire",
        choices=("json", "protobuf"),
        help="default: json with --declarations, protobuf with reflection (json for a "
        "service the server lists but does not describe)",
    )
    _common_flags(call)
    call.set_defaults(run=call_command)


def _common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--declarations",
        metavar="MODULE",
        help="find services in this module's declarations instead of asking the server",
    )
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="KEY:VALUE",
        help="request metadata (repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds for each call, and for the reflection questions together "
        f"(default: none for the call, {REFLECTION_TIMEOUT:g} for reflection)",
    )
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--tls-ca-cert", help="PEM of the CA to trust (default: system roots)")
    parser.add_argument("--tls-client-cert", help="PEM of a client certificate (mutual TLS)")
    parser.add_argument("--tls-client-key", help="PEM of the client certificate's key")
    parser.add_argument("--tls-server-name", help="the name to verify the certificate against")


def _channel(args: argparse.Namespace) -> grpc.Channel:
    tls_only = (args.tls_ca_cert, args.tls_client_cert, args.tls_client_key, args.tls_server_name)
    if not args.tls and any(value is not None for value in tls_only):
        raise CallError("the --tls-* flags need --tls")
    if args.timeout is not None and args.timeout <= 0:
        raise CallError("--timeout must be positive")
    if not args.tls:
        return grpc.insecure_channel(args.target)
    options = [("grpc.ssl_target_name_override", args.tls_server_name)]
    try:
        credentials = channel_credentials(
            args.tls_ca_cert,
            certificate_chain=args.tls_client_cert,
            private_key=args.tls_client_key,
        )
    except (OSError, ValueError) as exc:
        raise CallError(str(exc)) from None
    return grpc.secure_channel(
        args.target, credentials, options=options if args.tls_server_name else []
    )


def _metadata(args: argparse.Namespace) -> list[tuple[str, str]]:
    metadata = []
    for header in args.header:
        key, colon, value = header.partition(":")
        if not colon or not key.strip():
            raise CallError(f"-H {header!r} is not KEY:VALUE")
        metadata.append((key.strip().lower(), value.strip()))
    return metadata


def _declarations(module_name: str) -> dict[str, type[Service]]:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CallError(f"cannot import {module_name!r}: {exc}") from None
    found: dict[str, type[Service]] = {
        value.service_name(): value  # type: ignore[attr-defined]
        for value in vars(module).values()
        if isinstance(value, type) and Service in value.__mro__ and value is not Service
    }
    if not found:
        raise CallError(f"{module_name} declares no Service")
    return found


def list_command(args: argparse.Namespace) -> int:
    """Print the services (or one service's methods), one full name a line."""
    try:
        if args.declarations is not None:
            declared = _declarations(args.declarations)
            if args.service is None:
                names = list(declared)
            elif args.service in declared:
                names = [f"{args.service}.{name}" for name in declared[args.service].methods()]
            else:
                suggestion = did_you_mean(args.service, list(declared))
                raise CallError(f"{args.declarations} does not declare {args.service}{suggestion}")
        else:
            with _channel(args) as channel:
                reflector = Reflector(channel, _metadata(args), args.timeout)
                if args.service is None:
                    names = reflector.services()
                else:
                    service, _ = reflector.service(args.service)
                    names = [f"{args.service}.{method.name}" for method in service.method]
    except NoDescriptorError as exc:
        print(
            f"error: {exc.service} is a JSON-only service: the server lists it but does not "
            f"describe its methods; list {exc.service} --declarations MODULE lists them",
            file=sys.stderr,
        )
        return FAILED
    except (CallError, ReflectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    for name in sorted(names) if args.service is None else names:
        print(name)
    return 0


def _split(method: str) -> tuple[str, str]:
    service, slash, name = method.lstrip("/").rpartition("/")
    if not slash:  # grpcurl also takes SERVICE.METHOD
        service, _, name = method.rpartition(".")
    if not service or not name:
        raise CallError(f"{method!r} is not SERVICE/METHOD")
    return service, name


def _requests(data: str | None, client_streaming: bool, stdin: TextIO) -> Iterator[str]:
    """The requests' JSON texts: the argument, or one per non-blank stdin line."""
    if data is not None and data not in ("-", "@"):
        yield data
    elif data is None and not client_streaming:
        yield "{}"
    else:
        for line in stdin:
            if line.strip():
                yield line


def _from_declaration(
    declared: dict[str, type[Service]], service: str, name: str, wire: str
) -> tuple[Streams, Encode, Decode]:
    if service not in declared:
        raise CallError(
            f"the declarations have no service {service}{did_you_mean(service, list(declared))}"
        )
    methods = declared[service].methods()
    method: Method[Any, Any] | None = methods.get(name)
    if method is None:
        raise CallError(
            f"service {service} has no method {name}{did_you_mean(name, list(methods))}"
        )
    request_json, response_json = method.request_codec, method.response_codec
    request_wire: Any = request_json
    response_wire: Any = response_json
    if wire == "protobuf":
        from ..encoding.protobuf import ProtobufCodec
        from ..errors import DeclarationError

        try:
            request_wire = ProtobufCodec(method.request_type)
            response_wire = ProtobufCodec(method.response_type)
        except DeclarationError as exc:
            raise CallError(f"{service}/{name} is not numbered for protobuf: {exc}") from None

    def encode(text: str) -> bytes:
        what = method.request_type.__name__
        try:
            request = request_json.decode(text.encode())
        except DecodeError as exc:
            raise CallError(f"the request does not match {what}: {exc}") from None
        unknown = unknown_field(json.loads(text), method.request_type)
        if unknown:
            raise CallError(f"the request does not match {what}: {unknown}")
        return bytes(request_wire.encode(request))

    def decode(data: bytes) -> str:
        try:
            return bytes(response_json.encode(response_wire.decode(data))).decode()
        except DecodeError as exc:
            raise CallError(f"a response does not decode: {exc}") from None

    kind = method.cardinality
    return (kind.client_streaming, kind.server_streaming), encode, decode


def _json_passthrough(text: str) -> bytes:
    """The JSON wire without a declaration: the text as it is, if it is a JSON object."""
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise CallError(f"the request is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise CallError("a request is a JSON object")
    return text.strip().encode()


def _json_text(data: bytes) -> str:
    try:
        return bytes(data).decode()
    except UnicodeDecodeError:
        raise CallError(
            "a response is not JSON text (a protobuf server? drop --wire json)"
        ) from None


def _from_reflection(
    reflector: Reflector, service: str, name: str, wire: str | None
) -> tuple[Streams, Encode, Decode]:
    try:
        resolved = reflector.method(service, name, imports=wire != "json")
    except NoDescriptorError as exc:
        if wire == "protobuf":
            raise CallError(f"{exc}; drop --wire protobuf to call it over JSON") from None
        # A transport service declared without field numbers: it speaks only the
        # JSON wire, and the server did not say which kind of call the method is.
        return None, _json_passthrough, _json_text
    method = resolved.method
    streams = method.client_streaming, method.server_streaming
    if wire == "json":
        return streams, _json_passthrough, _json_text
    encode, decode = converters(resolved)
    return streams, encode, decode


def call_command(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    """Make the call; print each response as a JSON line; return grpcurl's exit status."""
    stdin = sys.stdin if stdin is None else stdin
    failure: list[CallError] = []
    try:
        service, name = _split(args.method)
        metadata = _metadata(args)
        declared = _declarations(args.declarations) if args.declarations is not None else None
        with _channel(args) as channel:
            if declared is not None:
                streams, encode, decode = _from_declaration(
                    declared, service, name, args.wire or "json"
                )
            else:
                reflector = Reflector(channel, metadata, args.timeout)
                streams, encode, decode = _from_reflection(reflector, service, name, args.wire)
            client_streaming = streams is not None and streams[0]

            def requests() -> Iterator[bytes]:
                for text in _requests(args.data, client_streaming, stdin):
                    try:
                        yield encode(text)
                    except CallError as exc:  # ends the call (CANCELLED); reported below
                        failure.append(exc)
                        raise

            path = f"/{service}/{name}"
            try:
                with client_errors():
                    responses = _invoke(
                        channel,
                        path,
                        streams,
                        requests(),
                        timeout=args.timeout,
                        metadata=metadata,
                    )
                    for response in responses:
                        print(decode(response), flush=True)
            except RpcError as exc:
                if failure:
                    raise failure[0] from None
                print(_error_text(exc), file=sys.stderr)
                if streams is None and exc.code is StatusCode.UNIMPLEMENTED:
                    print(
                        f"hint: the server lists {service} but does not describe its methods; "
                        f"--declarations MODULE checks the name {name}",
                        file=sys.stderr,
                    )
                return STATUS_BASE + int(exc.code)
    except (CallError, ReflectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FAILED
    return 0


def _error_text(exc: RpcError) -> str:
    """The error as grpcurl reports one: the status, its message, then its details."""
    text = f"ERROR: {exc.code.name}: {exc.message}"
    if exc.details is not None:
        text += f"\ndetails: {json.dumps(exc.details, ensure_ascii=False, default=repr)}"
    for detail in exc.error_details:  # as grpcurl prints a google.protobuf.Any
        raw = packed(detail)
        shown = (
            {"@type": raw.type_url, "value": base64.b64encode(raw.value).decode()}
            if isinstance(detail, RawDetail)
            else {"@type": raw.type_url, **json.loads(JsonCodec(type(detail)).encode(detail))}
        )
        text += f"\ndetails: {json.dumps(shown, ensure_ascii=False, default=repr)}"
    return text


def _invoke(
    channel: grpc.Channel,
    path: str,
    streams: Streams,
    requests: Iterator[bytes],
    *,
    timeout: float | None = None,
    metadata: list[tuple[str, str]] | None = None,
) -> Iterator[bytes]:
    """Call ``path`` with raw bytes in and out, whatever its kind.

    A method of unknown kind is called as a bidirectional stream: on the wire
    that is every kind of call, as long as it gets as many requests as it takes.
    """
    options: dict[str, Any] = {"timeout": timeout, "metadata": metadata}
    raw: Any = channel  # bytes in, bytes out: no (de)serialisers
    client_streaming, server_streaming = (True, True) if streams is None else streams
    if client_streaming and server_streaming:
        yield from raw.stream_stream(path)(requests, **options)
    elif client_streaming:
        yield raw.stream_unary(path)(requests, **options)
    else:
        request = next(requests, None)
        if request is None:
            raise CallError("no request given")
        if next(requests, None) is not None:
            raise CallError("the method takes one request, stdin gave more")
        if server_streaming:
            yield from raw.unary_stream(path)(request, **options)
        else:
            yield raw.unary_unary(path)(request, **options)
