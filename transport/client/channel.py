"""The options of a client's channel: keepalive, retries, load balancing, user agent, raw options.

:func:`channel_options` turns what ``Client.connect()`` and
``AsyncClient.connect()`` were given into grpcio's channel arguments, checked
before any channel exists. The raw ``options`` go last and win: a name given
there replaces the library's own value for it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..options import grpc_options
from ..status import StatusCode

__all__ = ["LOAD_BALANCING_POLICIES", "Keepalive", "RetryPolicy", "channel_options"]

#: The load-balancing policies grpcio ships, by name (``load_balancing=``).
LOAD_BALANCING_POLICIES = ("pick_first", "round_robin")

# grpc-core caps a retry policy's attempts at 5 (gRFC A6); more is refused
# here rather than silently lowered.
_MOST_ATTEMPTS = 5


@dataclass(frozen=True, kw_only=True)
class Keepalive:
    """HTTP/2 pings that keep a connection alive and notice a peer gone silent.

    Every ``time`` seconds without activity the client pings; a ping not
    answered within ``timeout`` seconds closes the connection (its calls end
    UNAVAILABLE). ``permit_without_calls`` pings also while no call is open.
    The server must allow pings this often (see :func:`transport.options.keepalive_enforcement`),
    else it answers GOAWAY ``too_many_pings`` and the client doubles its interval.
    """

    time: float
    timeout: float = 20.0
    permit_without_calls: bool = False

    def __post_init__(self) -> None:
        for name in ("time", "timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"Keepalive({name}=...) must be a positive number of seconds, got {value!r}"
                )

    def options(self) -> list[tuple[str, Any]]:
        """The grpcio channel arguments of this keepalive."""
        return [
            ("grpc.keepalive_time_ms", _ms(self.time)),
            ("grpc.keepalive_timeout_ms", _ms(self.timeout)),
            ("grpc.keepalive_permit_without_calls", int(self.permit_without_calls)),
            # Without data in flight grpc-core sends at most 2 pings unless told
            # otherwise; 0 lets keepalive go on for as long as the connection idles.
            ("grpc.http2.max_pings_without_data", 0),
        ]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """gRPC's own retry of a failed call (gRFC A6), for the statuses listed and no others.

    A call that ends with one of ``codes`` is sent again, up to ``max_attempts``
    attempts in all (2 to 5), after a random delay up to ``initial_backoff``
    seconds, multiplied by ``backoff_multiplier`` at each attempt up to
    ``max_backoff``. grpc-core retries only until the first response arrives,
    and only within the call's deadline. List only statuses after which
    sending the call again is safe for the methods it applies to.
    """

    codes: Collection[StatusCode | str]
    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    backoff_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.codes, str) or not self.codes:
            raise ValueError(
                "RetryPolicy(codes=...) must list the statuses to retry, "
                "e.g. codes=[StatusCode.UNAVAILABLE]"
            )
        object.__setattr__(self, "codes", tuple(_code(code) for code in self.codes))
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or not 2 <= self.max_attempts <= _MOST_ATTEMPTS
        ):
            raise ValueError(
                f"RetryPolicy(max_attempts=...) counts the first attempt too and must be 2 to "
                f"{_MOST_ATTEMPTS}, got {self.max_attempts!r}"
            )
        for name in ("initial_backoff", "max_backoff", "backoff_multiplier"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"RetryPolicy({name}=...) must be a positive number, got {value!r}"
                )
        if self.max_backoff < self.initial_backoff:
            raise ValueError(
                f"RetryPolicy(max_backoff={self.max_backoff!r}) must be at least "
                f"initial_backoff={self.initial_backoff!r}"
            )

    def service_config(self) -> dict[str, Any]:
        """The policy as a gRPC service config applying to every method of the channel."""
        return {
            "methodConfig": [
                {
                    "name": [{}],
                    "retryPolicy": {
                        "maxAttempts": self.max_attempts,
                        "initialBackoff": _duration(self.initial_backoff),
                        "maxBackoff": _duration(self.max_backoff),
                        "backoffMultiplier": self.backoff_multiplier,
                        "retryableStatusCodes": [code.name for code in self.codes],  # type: ignore[union-attr]
                    },
                }
            ]
        }


def _code(code: StatusCode | str) -> StatusCode:
    try:
        found = code if isinstance(code, StatusCode) else StatusCode[str(code).upper()]
    except KeyError:
        raise ValueError(
            f"RetryPolicy(codes=...): {code!r} is not a gRPC status; use StatusCode names"
        ) from None
    if found is StatusCode.OK:
        raise ValueError("RetryPolicy(codes=...): OK is not a failure to retry")
    return found


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _duration(seconds: float) -> str:
    """A protobuf JSON duration: "0.1s"."""
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def channel_options(
    *,
    max_send_message_bytes: int | None = None,
    max_receive_message_bytes: int | None = None,
    keepalive: Keepalive | None = None,
    retry: RetryPolicy | None = None,
    load_balancing: str | None = None,
    user_agent: str | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """The grpcio arguments of a client channel; each name once, ``options`` winning."""
    if keepalive is not None and not isinstance(keepalive, Keepalive):
        raise TypeError(f"keepalive must be a transport.Keepalive, got {keepalive!r}")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a transport.RetryPolicy, got {retry!r}")
    if load_balancing is not None and load_balancing not in LOAD_BALANCING_POLICIES:
        raise ValueError(
            f"load_balancing must be one of {list(LOAD_BALANCING_POLICIES)}, got {load_balancing!r}"
        )
    if user_agent is not None and (not isinstance(user_agent, str) or not user_agent.strip()):
        raise ValueError(f"user_agent must be a non-empty string, got {user_agent!r}")
    raw = list(options)
    for entry in raw:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ValueError(
                "options must be (name, value) pairs such as "
                f"('grpc.max_receive_message_length', 1024), got {entry!r}"
            )
    chosen = dict(
        grpc_options(
            max_send_message_bytes=max_send_message_bytes,
            max_receive_message_bytes=max_receive_message_bytes,
        )
    )
    if keepalive is not None:
        chosen.update(keepalive.options())
    if retry is not None:
        chosen["grpc.enable_retries"] = 1
        chosen["grpc.service_config"] = json.dumps(retry.service_config())
    if load_balancing is not None:
        chosen["grpc.lb_policy_name"] = load_balancing
    if user_agent is not None:
        chosen["grpc.primary_user_agent"] = user_agent
    chosen.update(raw)
    return list(chosen.items())
