"""gRPC's interop suite over JSON: ``grpc.testing.TestService``, its servers and client cases.

The proof that this library behaves like every other gRPC implementation: the
test service of ``grpc/grpc`` declared with the public API, a sync and an
asyncio server, and the client cases of ``doc/interop-test-descriptions.md``.
Run them with ``python -m transport.interop server`` and ``... client``.
"""

from __future__ import annotations

from .cases import CASES as CASES
from .cases import CaseError as CaseError
from .cases import CaseResult as CaseResult
from .cases import run_case as run_case
from .cases import run_cases as run_cases
from .server import AsyncTestServiceServer as AsyncTestServiceServer
from .server import TestServiceServer as TestServiceServer
from .service import TestService as TestService
from .service import UnimplementedService as UnimplementedService

__all__ = [
    "CASES",
    "AsyncTestServiceServer",
    "CaseError",
    "CaseResult",
    "TestService",
    "TestServiceServer",
    "UnimplementedService",
    "run_case",
    "run_cases",
]
