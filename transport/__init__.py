"""gRPC for Python without protoc: hand-declared msgspec services over a JSON codec on grpcio."""

from __future__ import annotations

from ._calls import CallInfo as CallInfo
from .async_client import AsyncBidiStream as AsyncBidiStream
from .async_client import AsyncClient as AsyncClient
from .async_client import AsyncResponseStream as AsyncResponseStream
from .client import BidiStream as BidiStream
from .client import Client as Client
from .client import ResponseStream as ResponseStream
from .codec import DecodeError as DecodeError
from .codec import JsonCodec as JsonCodec
from .codec import Message as Message
from .context import AsyncContext as AsyncContext
from .context import Context as Context
from .context import Metadata as Metadata
from .errors import DeclarationError as DeclarationError
from .errors import RpcError as RpcError
from .errors import TransportError as TransportError
from .ndarray import QuantizedArray as QuantizedArray
from .ndarray import quantize as quantize
from .options import DEFAULT_MAX_MESSAGE_BYTES as DEFAULT_MAX_MESSAGE_BYTES
from .options import grpc_options as grpc_options
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
from .types import Int32 as Int32
from .types import Int64 as Int64
from .types import UInt32 as UInt32
from .types import UInt64 as UInt64

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "AsyncBidiStream",
    "AsyncClient",
    "AsyncContext",
    "AsyncResponseStream",
    "BidiStream",
    "Binding",
    "CallInfo",
    "Cardinality",
    "Client",
    "Context",
    "DeclarationError",
    "DecodeError",
    "Int32",
    "Int64",
    "JsonCodec",
    "Message",
    "Metadata",
    "Method",
    "QuantizedArray",
    "ResponseStream",
    "RpcError",
    "Service",
    "StatusCode",
    "StreamStream",
    "StreamUnary",
    "TransportError",
    "UInt32",
    "UInt64",
    "UnaryStream",
    "UnaryUnary",
    "bind",
    "grpc_options",
    "quantize",
    "rpc",
]
