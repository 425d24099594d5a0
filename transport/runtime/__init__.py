"""The owner runtime of a model daemon: fenced sessions, owner handles, leases and takeover.

A backend implements :class:`Service` and :class:`Session`; :class:`Server`
puts it on the wire as ``transport.v1.Runtime``; :func:`serve` runs a daemon
that owns a lease (or waits as standby); :func:`dial_leader` gives a client
fenced on the owner it expects.
"""

from __future__ import annotations

from .async_client import AsyncClient as AsyncClient
from .async_client import AsyncRemoteSession as AsyncRemoteSession
from .async_client import dial_leader_async as dial_leader_async
from .backend_none import NoneBackend as NoneBackend
from .client import Client as Client
from .client import RemoteSession as RemoteSession
from .client import dial_leader as dial_leader
from .contract import HealthStatus as HealthStatus
from .contract import ModelInfo as ModelInfo
from .contract import OpenSessionRequest as OpenSessionRequest
from .contract import Service as Service
from .contract import Session as Session
from .contract import TensorSpec as TensorSpec
from .daemon import Serving as Serving
from .daemon import running as running
from .daemon import serve as serve
from .etcd_lease import EtcdLeaseStore as EtcdLeaseStore
from .fence import OWNER_METADATA_KEY as OWNER_METADATA_KEY
from .fence import Fence as Fence
from .fence import FencedError as FencedError
from .fence import LeaseLapsedError as LeaseLapsedError
from .handles import Handles as Handles
from .handles import UnknownHandleError as UnknownHandleError
from .lease import FileLeaseStore as FileLeaseStore
from .lease import LeaseError as LeaseError
from .lease import LeaseRecord as LeaseRecord
from .lease import LeaseStore as LeaseStore
from .owner import DEFAULT_LEASE_TTL as DEFAULT_LEASE_TTL
from .owner import Owner as Owner
from .server import Server as Server
from .sessions import DEFAULT_IDLE_TIMEOUT as DEFAULT_IDLE_TIMEOUT
from .sessions import DEFAULT_MAX_SESSIONS as DEFAULT_MAX_SESSIONS
from .sessions import SessionTable as SessionTable
from .sessions import TooManySessionsError as TooManySessionsError
from .wire import Runtime as Runtime

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_MAX_SESSIONS",
    "OWNER_METADATA_KEY",
    "AsyncClient",
    "AsyncRemoteSession",
    "Client",
    "EtcdLeaseStore",
    "Fence",
    "FencedError",
    "FileLeaseStore",
    "Handles",
    "HealthStatus",
    "LeaseError",
    "LeaseLapsedError",
    "LeaseRecord",
    "LeaseStore",
    "ModelInfo",
    "NoneBackend",
    "OpenSessionRequest",
    "Owner",
    "RemoteSession",
    "Runtime",
    "Server",
    "Service",
    "Serving",
    "Session",
    "SessionTable",
    "TensorSpec",
    "TooManySessionsError",
    "UnknownHandleError",
    "dial_leader",
    "dial_leader_async",
    "running",
    "serve",
]
