"""gRPC's standard error details, ``google/rpc/error_details.proto``, as typed messages.

A handler raises ``RpcError(code, message, error_details=[ErrorInfo(...)])``;
each detail travels packed in a ``google.protobuf.Any`` (type URL
``type.googleapis.com/google.rpc.ErrorInfo``...) inside the
``google.rpc.Status`` of the ``grpc-status-details-bin`` trailer, where
grpcio-status, grpc-go's ``status.Details()`` and grpc-js read them. A client's
:class:`~transport.RpcError` holds them typed again (``exc.details_of(ErrorInfo)``);
a detail of a type not declared here stays a :class:`RawDetail`. Field numbers
and names are those of the ``.proto``.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

from .encoding.json_codec import Message
from .encoding.protobuf import Number, ProtobufCodec
from .encoding.rich_status import RawDetail
from .encoding.wellknown import Duration

__all__ = [
    "BadRequest",
    "DebugInfo",
    "ErrorDetail",
    "ErrorInfo",
    "Help",
    "LocalizedMessage",
    "PreconditionFailure",
    "QuotaFailure",
    "RawDetail",
    "RequestInfo",
    "ResourceInfo",
    "RetryInfo",
    "packed",
    "unpacked",
]

TYPE_URL_PREFIX = "type.googleapis.com/"


class ErrorInfo(Message):
    """``google.rpc.ErrorInfo``: why the call failed, as a reason code within a domain."""

    reason: Annotated[str, Number(1)] = ""  # UPPER_SNAKE_CASE, e.g. "API_DISABLED"
    domain: Annotated[str, Number(2)] = ""  # e.g. "shop.example.com"
    metadata: Annotated[dict[str, str], Number(3)] = {}


class RetryInfo(Message):
    """``google.rpc.RetryInfo``: how long the client should wait before retrying."""

    retry_delay: Annotated[Duration | None, Number(1)] = None


class DebugInfo(Message):
    """``google.rpc.DebugInfo``: a stack trace and detail for debugging (not for end users)."""

    stack_entries: Annotated[list[str], Number(1)] = []
    detail: Annotated[str, Number(2)] = ""


class QuotaFailure(Message):
    """``google.rpc.QuotaFailure``: which quotas were exceeded."""

    class Violation(Message):
        """One exceeded quota."""

        subject: Annotated[str, Number(1)] = ""
        description: Annotated[str, Number(2)] = ""
        api_service: Annotated[str, Number(3)] = ""
        quota_metric: Annotated[str, Number(4)] = ""
        quota_id: Annotated[str, Number(5)] = ""
        quota_dimensions: Annotated[dict[str, str], Number(6)] = {}
        quota_value: Annotated[int, Number(7)] = 0
        future_quota_value: Annotated[int | None, Number(8)] = None

    violations: Annotated[list[Violation], Number(1)] = []


class PreconditionFailure(Message):
    """``google.rpc.PreconditionFailure``: which preconditions failed."""

    class Violation(Message):
        """One failed precondition: its type (e.g. "TOS"), subject and description."""

        type: Annotated[str, Number(1)] = ""
        subject: Annotated[str, Number(2)] = ""
        description: Annotated[str, Number(3)] = ""

    violations: Annotated[list[Violation], Number(1)] = []


class LocalizedMessage(Message):
    """``google.rpc.LocalizedMessage``: an error message in a locale (``"en-US"``)."""

    locale: Annotated[str, Number(1)] = ""
    message: Annotated[str, Number(2)] = ""


class BadRequest(Message):
    """``google.rpc.BadRequest``: which fields of the request are wrong, and why."""

    class FieldViolation(Message):
        """One wrong field: its path (``items[2].sku``), what is wrong, a reason code."""

        field: Annotated[str, Number(1)] = ""
        description: Annotated[str, Number(2)] = ""
        reason: Annotated[str, Number(3)] = ""
        localized_message: Annotated[LocalizedMessage | None, Number(4)] = None

    field_violations: Annotated[list[FieldViolation], Number(1)] = []


class RequestInfo(Message):
    """``google.rpc.RequestInfo``: the request's id, to quote in a bug report."""

    request_id: Annotated[str, Number(1)] = ""
    serving_data: Annotated[str, Number(2)] = ""


class ResourceInfo(Message):
    """``google.rpc.ResourceInfo``: the resource the call was about."""

    resource_type: Annotated[str, Number(1)] = ""
    resource_name: Annotated[str, Number(2)] = ""
    owner: Annotated[str, Number(3)] = ""
    description: Annotated[str, Number(4)] = ""


class Help(Message):
    """``google.rpc.Help``: links to documentation about the error."""

    class Link(Message):
        """One link: what it is about and its URL."""

        description: Annotated[str, Number(1)] = ""
        url: Annotated[str, Number(2)] = ""

    links: Annotated[list[Link], Number(1)] = []


ErrorDetail: TypeAlias = (
    ErrorInfo
    | RetryInfo
    | DebugInfo
    | QuotaFailure
    | PreconditionFailure
    | BadRequest
    | RequestInfo
    | ResourceInfo
    | Help
    | LocalizedMessage
    | RawDetail
)
"""One detail of an error: a standard message, or a :class:`RawDetail` of another type."""

_TYPES: dict[str, type[Message]] = {
    f"google.rpc.{cls.__name__}": cls
    for cls in (
        ErrorInfo,
        RetryInfo,
        DebugInfo,
        QuotaFailure,
        PreconditionFailure,
        BadRequest,
        RequestInfo,
        ResourceInfo,
        Help,
        LocalizedMessage,
    )
}
_CODECS: dict[type[Message], tuple[str, ProtobufCodec[Message]]] = {
    cls: (TYPE_URL_PREFIX + name, ProtobufCodec(cls)) for name, cls in _TYPES.items()
}


def packed(detail: ErrorDetail) -> RawDetail:
    """``detail`` as the ``google.protobuf.Any`` it travels as.

    Raises ``TypeError`` for anything but the messages of this module and
    :class:`RawDetail`, ``ValueError`` for one whose fields do not encode.
    """
    if isinstance(detail, RawDetail):
        return detail
    found = _CODECS.get(type(detail))
    if found is None:
        raise TypeError(
            f"{type(detail).__name__} is not an error detail: send ErrorInfo, BadRequest... "
            "or your own message packed as a RawDetail"
        )
    type_url, codec = found
    return RawDetail(type_url=type_url, value=codec.encode(detail))


def unpacked(raw: RawDetail) -> ErrorDetail:
    """The typed message in ``raw``; ``raw`` itself for another type or bytes that do not decode.

    The type is the part of the URL after its last ``/``, as ``google.protobuf.Any``
    defines it, whatever the host.
    """
    cls = _TYPES.get(raw.type_url.rpartition("/")[2])
    if cls is None:
        return raw
    try:
        detail: ErrorDetail = _CODECS[cls][1].decode(raw.value)  # type: ignore[assignment]
    except ValueError:  # a DecodeError, or a value the type refuses
        return raw
    return detail
