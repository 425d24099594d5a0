"""``grpc.health.v1.Health`` as a declaration, so server reflection describes it.

The health service is served by hand (:mod:`transport.health.service`); this is only its
shape, numbered as in grpc's ``health.proto``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Protocol

from ..encoding.json_codec import Message
from ..encoding.protobuf import Number
from ..encoding.wellknown import EnumField, ProtoEnum
from ..service import Service, rpc

__all__ = ["HealthCheckRequest", "HealthCheckResponse", "HealthDeclaration"]


class HealthCheckRequest(Message):
    """The service to check; ``""`` is the whole server."""

    service: Annotated[str, Number(1)] = ""


class HealthCheckResponse(Message):
    """The service's serving status."""

    class ServingStatus(ProtoEnum):
        """Whether the service serves."""

        UNKNOWN = 0
        SERVING = 1
        NOT_SERVING = 2
        SERVICE_UNKNOWN = 3

    status: Annotated[EnumField[ServingStatus], Number(1)] = ServingStatus.UNKNOWN


class HealthDeclaration(Service, Protocol, name="grpc.health.v1.Health"):
    """The standard health service."""

    @rpc
    def Check(self, request: HealthCheckRequest) -> HealthCheckResponse:
        """The status now."""

    @rpc
    def Watch(self, request: HealthCheckRequest) -> Iterator[HealthCheckResponse]:
        """The status, then every change."""
