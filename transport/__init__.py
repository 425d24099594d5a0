"""gRPC for Python without protoc: hand-declared msgspec services over a JSON codec on grpcio."""

from __future__ import annotations

# First: grpc reads the command line's log level (set by _quiet) when it is imported.
from . import _quiet as _quiet
from .client.aio import AsyncClient as AsyncClient
from .client.aio_streams import AsyncBidiStream as AsyncBidiStream
from .client.aio_streams import AsyncResponseStream as AsyncResponseStream
from .client.channel import Keepalive as Keepalive
from .client.channel import RetryPolicy as RetryPolicy
from .client.streams import BidiStream as BidiStream
from .client.streams import ResponseStream as ResponseStream
from .client.sync import Client as Client
from .context import AsyncContext as AsyncContext
from .context import Context as Context
from .encoding.json_codec import FrozenMessage as FrozenMessage
from .encoding.json_codec import JsonCodec as JsonCodec
from .encoding.json_codec import Message as Message
from .encoding.ndarray import QuantizedArray as QuantizedArray
from .encoding.ndarray import quantize as quantize
from .encoding.protobuf import Number as Number
from .encoding.protobuf import ProtobufCodec as ProtobufCodec
from .encoding.scalars import Fixed32 as Fixed32
from .encoding.scalars import Fixed64 as Fixed64
from .encoding.scalars import Float32 as Float32
from .encoding.scalars import Int32 as Int32
from .encoding.scalars import Int64 as Int64
from .encoding.scalars import SFixed32 as SFixed32
from .encoding.scalars import SFixed64 as SFixed64
from .encoding.scalars import SInt32 as SInt32
from .encoding.scalars import SInt64 as SInt64
from .encoding.scalars import UInt32 as UInt32
from .encoding.scalars import UInt64 as UInt64
from .encoding.wellknown import BoolValue as BoolValue
from .encoding.wellknown import BytesValue as BytesValue
from .encoding.wellknown import DoubleValue as DoubleValue
from .encoding.wellknown import Duration as Duration
from .encoding.wellknown import Empty as Empty
from .encoding.wellknown import EnumField as EnumField
from .encoding.wellknown import FloatValue as FloatValue
from .encoding.wellknown import Int32Value as Int32Value
from .encoding.wellknown import Int64Value as Int64Value
from .encoding.wellknown import ListValue as ListValue
from .encoding.wellknown import ProtoEnum as ProtoEnum
from .encoding.wellknown import StringValue as StringValue
from .encoding.wellknown import Struct as Struct
from .encoding.wellknown import Timestamp as Timestamp
from .encoding.wellknown import UInt32Value as UInt32Value
from .encoding.wellknown import UInt64Value as UInt64Value
from .encoding.wellknown import Value as Value
from .encoding.wellknown import one_of as one_of
from .error_details import BadRequest as BadRequest
from .error_details import DebugInfo as DebugInfo
from .error_details import ErrorDetail as ErrorDetail
from .error_details import ErrorInfo as ErrorInfo
from .error_details import Help as Help
from .error_details import LocalizedMessage as LocalizedMessage
from .error_details import PreconditionFailure as PreconditionFailure
from .error_details import QuotaFailure as QuotaFailure
from .error_details import RawDetail as RawDetail
from .error_details import RequestInfo as RequestInfo
from .error_details import ResourceInfo as ResourceInfo
from .error_details import RetryInfo as RetryInfo
from .errors import ChunkError as ChunkError
from .errors import DeclarationError as DeclarationError
from .errors import DeclarationWarning as DeclarationWarning
from .errors import DecodeError as DecodeError
from .errors import DecodeLimitError as DecodeLimitError
from .errors import RpcError as RpcError
from .errors import TransportError as TransportError
from .interceptors import ClientCall as ClientCall
from .interceptors import ClientInterceptor as ClientInterceptor
from .interceptors import ServerCall as ServerCall
from .interceptors import ServerInterceptor as ServerInterceptor
from .metadata import CallInfo as CallInfo
from .metadata import Metadata as Metadata
from .options import DEFAULT_MAX_MESSAGE_BYTES as DEFAULT_MAX_MESSAGE_BYTES
from .options import grpc_options as grpc_options
from .options import keepalive_enforcement as keepalive_enforcement
from .options import server_options as server_options
from .peer import ClientCertificate as ClientCertificate
from .peer import PeerIdentity as PeerIdentity
from .server import Binding as Binding
from .server import bind as bind
from .service import Cardinality as Cardinality
from .service import Method as Method
from .service import Service as Service
from .service import StreamStream as StreamStream
from .service import StreamUnary as StreamUnary
from .service import UnaryStream as UnaryStream
from .service import UnaryUnary as UnaryUnary
from .service import rpc as rpc
from .status import StatusCode as StatusCode

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "AsyncBidiStream",
    "AsyncClient",
    "AsyncContext",
    "AsyncResponseStream",
    "BadRequest",
    "BidiStream",
    "Binding",
    "BoolValue",
    "BytesValue",
    "CallInfo",
    "Cardinality",
    "ChunkError",
    "Client",
    "ClientCall",
    "ClientCertificate",
    "ClientInterceptor",
    "Context",
    "DebugInfo",
    "DeclarationError",
    "DeclarationWarning",
    "DecodeError",
    "DecodeLimitError",
    "DoubleValue",
    "Duration",
    "Empty",
    "EnumField",
    "ErrorDetail",
    "ErrorInfo",
    "Fixed32",
    "Fixed64",
    "Float32",
    "FloatValue",
    "FrozenMessage",
    "Help",
    "Int32",
    "Int32Value",
    "Int64",
    "Int64Value",
    "JsonCodec",
    "Keepalive",
    "ListValue",
    "LocalizedMessage",
    "Message",
    "Metadata",
    "Method",
    "Number",
    "PeerIdentity",
    "PreconditionFailure",
    "ProtoEnum",
    "ProtobufCodec",
    "QuantizedArray",
    "QuotaFailure",
    "RawDetail",
    "RequestInfo",
    "ResourceInfo",
    "ResponseStream",
    "RetryInfo",
    "RetryPolicy",
    "RpcError",
    "SFixed32",
    "SFixed64",
    "SInt32",
    "SInt64",
    "ServerCall",
    "ServerInterceptor",
    "Service",
    "StatusCode",
    "StreamStream",
    "StreamUnary",
    "StringValue",
    "Struct",
    "Timestamp",
    "TransportError",
    "UInt32",
    "UInt32Value",
    "UInt64",
    "UInt64Value",
    "UnaryStream",
    "UnaryUnary",
    "Value",
    "bind",
    "grpc_options",
    "keepalive_enforcement",
    "one_of",
    "quantize",
    "rpc",
    "server_options",
]
