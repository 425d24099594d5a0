"""An access log: one structured line per call, through :mod:`logging`.

``bind(Service, impl, interceptors=[access_log.server_interceptor()])`` logs
each call of the binding, once it ends, on the logger ``transport.access`` at
INFO (``async_server_interceptor()`` for an ``async def`` implementation);
``python -m transport run --access-log`` does it for the bindings it serves.
A line says the method, the peer, the status, the duration and the number of
messages each way (messages are decoded by then: their size on the wire is
not known to the interceptor)::

    method=/kv.v1.KV/Get peer=ipv4:127.0.0.1:50312 status=OK duration_ms=0.412 received=1 sent=1

``format="json"`` makes each line a JSON object with the same fields (and
``code``, the status' number), for log pipelines.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Literal

from ._call_watch import watching
from .interceptors import ServerCall
from .status import StatusCode

__all__ = ["FORMATS", "LOGGER", "async_server_interceptor", "log_to", "server_interceptor"]

#: The logger the lines go to.
LOGGER = "transport.access"
#: The formats of a line.
FORMATS = ("text", "json")
Format = Literal["text", "json"]


class _Call:
    """One call being logged."""

    __slots__ = ("_call", "_log", "_received", "_sent", "_start")

    def __init__(self, log: _Logging, call: ServerCall[Any]) -> None:
        self._log = log
        self._call = call
        self._received = 0
        self._sent = 0
        self._start = time.perf_counter()

    def received(self) -> None:
        self._received += 1

    def sent(self) -> None:
        self._sent += 1

    def end(self, code: StatusCode) -> None:
        duration_ms = round((time.perf_counter() - self._start) * 1000, 3)
        self._log.line(self._call, code, duration_ms, self._received, self._sent)


class _Logging:
    """The watcher of the access-log interceptors."""

    def __init__(self, logger: logging.Logger, format: Format) -> None:
        if format not in FORMATS:
            raise ValueError(f"access log format {format!r}: use one of {', '.join(FORMATS)}")
        self._logger = logger
        self._json = format == "json"

    def begin(self, call: ServerCall[Any]) -> _Call:
        return _Call(self, call)

    def line(
        self, call: ServerCall[Any], code: StatusCode, duration_ms: float, received: int, sent: int
    ) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        method, peer = call.method.path, call.peer
        if self._json:
            record = {
                "method": method,
                "peer": peer,
                "status": code.name,
                "code": code.value,
                "duration_ms": duration_ms,
                "received": received,
                "sent": sent,
            }
            self._logger.info("%s", json.dumps(record))
        else:
            self._logger.info(
                "method=%s peer=%s status=%s duration_ms=%.3f received=%d sent=%d",
                method,
                peer,
                code.name,
                duration_ms,
                received,
                sent,
            )


def server_interceptor(format: Format = "text", logger: logging.Logger | None = None) -> Any:
    """A ``def`` server interceptor that logs each call on ``logger`` (``transport.access``)."""
    return watching(_Logging(logger or logging.getLogger(LOGGER), format), asynchronous=False)


def async_server_interceptor(format: Format = "text", logger: logging.Logger | None = None) -> Any:
    """:func:`server_interceptor` for ``async def`` implementations (``grpc.aio`` servers)."""
    return watching(_Logging(logger or logging.getLogger(LOGGER), format), asynchronous=True)


def log_to(stream: Any) -> None:
    """Send the access log's lines, bare, to ``stream`` (``run --access-log`` prints them)."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
