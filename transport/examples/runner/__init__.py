"""Seed 001: fn's ``RunnerProtocol``, served and called.

``python -m transport.examples.runner serve --port 0`` serves it; ``demo``
runs ``echo``, ``upper`` and ``fail`` with :func:`engage`.
"""

from __future__ import annotations

from .client import Outcome as Outcome
from .client import call_messages as call_messages
from .client import engage as engage
from .protocol import CallFinished as CallFinished
from .protocol import CallResultStart as CallResultStart
from .protocol import ClientMsg as ClientMsg
from .protocol import DataFrame as DataFrame
from .protocol import HttpHeader as HttpHeader
from .protocol import HttpRespMeta as HttpRespMeta
from .protocol import RunnerMsg as RunnerMsg
from .protocol import RunnerProtocol as RunnerProtocol
from .protocol import RunnerStatus as RunnerStatus
from .protocol import TryCall as TryCall
from .server import FUNCTIONS as FUNCTIONS
from .server import RunnerServer as RunnerServer

__all__ = [
    "FUNCTIONS",
    "CallFinished",
    "CallResultStart",
    "ClientMsg",
    "DataFrame",
    "HttpHeader",
    "HttpRespMeta",
    "Outcome",
    "RunnerMsg",
    "RunnerProtocol",
    "RunnerServer",
    "RunnerStatus",
    "TryCall",
    "call_messages",
    "engage",
]
