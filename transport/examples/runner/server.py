"""The reference runner: runs small named functions on the request body."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone

import msgspec

from transport import Context, Empty, RpcError, StatusCode

from .._in_flight import CallsInFlight
from .protocol import (
    CallFinished,
    CallResultStart,
    ClientMsg,
    DataFrame,
    HttpHeader,
    HttpRespMeta,
    RunnerMsg,
    RunnerStatus,
)

__all__ = ["FUNCTIONS", "RunnerServer"]

Function = Callable[[bytes], bytes]


def _fail(body: bytes) -> bytes:
    raise RuntimeError("the function failed")


#: The functions the reference runner knows, by the ``fn`` of ``modelsCallJson``.
FUNCTIONS: Mapping[str, Function] = {"echo": bytes, "upper": bytes.upper, "fail": _fail}


class _ModelsCall(msgspec.Struct):
    fn: str


_models_call = msgspec.json.Decoder(_ModelsCall)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _invalid(message: str) -> RpcError:
    return RpcError(StatusCode.INVALID_ARGUMENT, message)


def _function_name(models_call_json: str) -> str:
    try:
        return _models_call.decode(models_call_json).fn
    except msgspec.DecodeError as exc:
        raise RpcError(
            StatusCode.INVALID_ARGUMENT,
            f'try.modelsCallJson must be a JSON object {{"fn": NAME}}: {exc}',
        ) from None


def _body(requests: Iterator[ClientMsg]) -> bytes:
    """Concatenate the data frames up to the one with ``eof``."""
    body = bytearray()
    for message in requests:
        if message.data is None:
            raise _invalid("a second try during a call")
        body += message.data.data
        if message.data.eof:
            return bytes(body)
    raise _invalid("the client stopped before a data frame with eof")


class RunnerServer:
    """Serves ``RunnerProtocol``: each ``Engage`` runs one function on its body.

    ``functions`` maps a name (the ``fn`` of ``modelsCallJson``) to a function
    of the body; the default knows ``echo``, ``upper`` and ``fail``. The
    response body goes out in frames of at most ``frame_size`` bytes.
    """

    def __init__(
        self, functions: Mapping[str, Function] = FUNCTIONS, *, frame_size: int = 32 * 1024
    ) -> None:
        self.functions = dict(functions)
        self.frame_size = frame_size
        self.engaged = CallsInFlight()

    def Status(self, request: Empty, context: Context) -> RunnerStatus:
        """Report the Engage calls in flight right now."""
        created_at = _now()
        return RunnerStatus(
            active=self.engaged.count,
            created_at=created_at,
            started_at=created_at,
            completed_at=_now(),
        )

    def Engage(self, requests: Iterator[ClientMsg], context: Context) -> Iterator[RunnerMsg]:
        """Take ``try`` and the body, run the function, send its result."""
        with self.engaged.track():
            # Headers go out now, not with the first reply: the client learns at
            # once that the runner has taken the call (and Status counts it).
            context.send_initial_metadata(())
            created_at = _now()
            first = next(requests, None)
            if first is None:
                return
            if first.try_ is None:
                raise _invalid("the first message of Engage must be try, got data")
            name = _function_name(first.try_.models_call_json)
            body = _body(requests)
            started_at = _now()
            function = self.functions.get(name)
            try:
                if function is None:
                    raise LookupError(f"no function named {name!r}")
                output = function(body)
            except Exception as exc:  # the function's failure is the call's outcome
                yield RunnerMsg(
                    finished=CallFinished(
                        success=False,
                        details=f"fn {name!r} failed",
                        error_code=404 if function is None else 502,
                        error_str=f"{type(exc).__name__}: {exc}",
                        created_at=created_at,
                        started_at=started_at,
                        completed_at=_now(),
                    )
                )
                return
            yield from self._result(output)
            yield RunnerMsg(
                finished=CallFinished(
                    success=True,
                    details=f"fn {name!r} returned {len(output)} bytes",
                    created_at=created_at,
                    started_at=started_at,
                    completed_at=_now(),
                )
            )

    def _result(self, output: bytes) -> Iterator[RunnerMsg]:
        headers = [
            HttpHeader(key="Content-Type", value="application/octet-stream"),
            HttpHeader(key="Content-Length", value=str(len(output))),
        ]
        yield RunnerMsg(
            result_start=CallResultStart(http=HttpRespMeta(status_code=200, headers=headers))
        )
        # At least one frame, so an empty body still ends with eof.
        offsets = range(0, len(output), self.frame_size) if output else [0]
        for offset in offsets:
            chunk = output[offset : offset + self.frame_size]
            eof = offset + self.frame_size >= len(output)
            yield RunnerMsg(data=DataFrame(data=chunk, eof=eof))
