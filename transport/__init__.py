"""gRPC for Python without protoc: hand-declared msgspec services over a JSON codec on grpcio."""

from __future__ import annotations

# First: grpc reads the command line's log level (set by _quiet) when it is imported.
from . import _quiet as _quiet
from .async_client import AsyncBidiStream as AsyncBidiStream
from .async_client import AsyncClient as AsyncClient
from .async_client import AsyncResponseStream as AsyncResponseStream
from .client import BidiStream as BidiStream
from .client import Client as Client
from .client import ResponseStream as ResponseStream
from .codec import FrozenMessage as FrozenMessage
from .codec import JsonCodec as JsonCodec
from .codec import Message as Message
from .context import AsyncContext as AsyncContext
from .context import Context as Context
from .errors import ChunkError as ChunkError
from .errors import DeclarationError as DeclarationError
from .errors import DeclarationWarning as DeclarationWarning
from .errors import DecodeError as DecodeError
from .errors import DecodeLimitError as DecodeLimitError
from .errors import RpcError as RpcError
from .errors import TransportError as TransportError
from .metadata import CallInfo as CallInfo
from .metadata import Metadata as Metadata
from .ndarray import QuantizedArray as QuantizedArray
from .ndarray import quantize as quantize
from .options import DEFAULT_MAX_MESSAGE_BYTES as DEFAULT_MAX_MESSAGE_BYTES
from .options import grpc_options as grpc_options
from .options import server_options as server_options
from .peer import ClientCertificate as ClientCertificate
from .peer import PeerIdentity as PeerIdentity
from .protobuf import Number as Number
from .protobuf import ProtobufCodec as ProtobufCodec
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
from .types import Fixed32 as Fixed32
from .types import Fixed64 as Fixed64
from .types import Float32 as Float32
from .types import Int32 as Int32
from .types import Int64 as Int64
from .types import SFixed32 as SFixed32
from .types import SFixed64 as SFixed64
from .types import SInt32 as SInt32
from .types import SInt64 as SInt64
from .types import UInt32 as UInt32
from .types import UInt64 as UInt64
from .wellknown import BoolValue as BoolValue
from .wellknown import BytesValue as BytesValue
from .wellknown import DoubleValue as DoubleValue
from .wellknown import Duration as Duration
from .wellknown import Empty as Empty
from .wellknown import EnumField as EnumField
from .wellknown import FloatValue as FloatValue
from .wellknown import Int32Value as Int32Value
from .wellknown import Int64Value as Int64Value
from .wellknown import ListValue as ListValue
from .wellknown import ProtoEnum as ProtoEnum
from .wellknown import StringValue as StringValue
from .wellknown import Struct as Struct
from .wellknown import Timestamp as Timestamp
from .wellknown import UInt32Value as UInt32Value
from .wellknown import UInt64Value as UInt64Value
from .wellknown import Value as Value
from .wellknown import one_of as one_of

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "AsyncBidiStream",
    "AsyncClient",
    "AsyncContext",
    "AsyncResponseStream",
    "BidiStream",
    "Binding",
    "BoolValue",
    "BytesValue",
    "CallInfo",
    "Cardinality",
    "ChunkError",
    "Client",
    "ClientCertificate",
    "Context",
    "DeclarationError",
    "DeclarationWarning",
    "DecodeError",
    "DecodeLimitError",
    "DoubleValue",
    "Duration",
    "Empty",
    "EnumField",
    "Fixed32",
    "Fixed64",
    "Float32",
    "FloatValue",
    "FrozenMessage",
    "Int32",
    "Int32Value",
    "Int64",
    "Int64Value",
    "JsonCodec",
    "ListValue",
    "Message",
    "Metadata",
    "Method",
    "Number",
    "PeerIdentity",
    "ProtoEnum",
    "ProtobufCodec",
    "QuantizedArray",
    "ResponseStream",
    "RpcError",
    "SFixed32",
    "SFixed64",
    "SInt32",
    "SInt64",
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
    "one_of",
    "quantize",
    "rpc",
    "server_options",
]
