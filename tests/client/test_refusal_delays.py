"""The delays between attempts of a refused call, and the call's timeout across them.

docs/reliability.md: a refused call is sent again 1-2 ms later at first, the
delays doubling up to 50-100 ms, for up to 10 s and within the call's timeout.
"""

from __future__ import annotations

import random
import time

import grpc
import pytest

from transport import Client, RpcError, StatusCode
from transport.client import calls
from transport.client.calls import RefusalRetry

from ..echo_service import Echo, Note
from ..refusing_server import Refuser, refusing_server


class Refusal(grpc.RpcError):
    """What grpcio raises for a stream the server refused (REFUSED_STREAM)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "Stream removed (RST_STREAM (Received RST_STREAM with error code 7))"


def test_the_delays_start_at_1_to_2_ms_and_double_up_to_50_to_100_ms() -> None:
    random.seed(28)
    for _ in range(50):  # the jitter: each delay anywhere in its upper half
        retry = RefusalRetry(None)
        for attempt in range(12):
            ceiling = min(0.1, 0.002 * 2**attempt)
            delay = retry.delay(Refusal())
            assert delay is not None and ceiling / 2 <= delay <= ceiling, (attempt, delay)


def test_the_delays_are_spread_not_all_at_the_ceiling() -> None:
    random.seed(28)
    retry = RefusalRetry(None)
    delays = [retry.delay(Refusal()) for _ in range(30)]
    assert all(delay is not None for delay in delays)
    assert min(d for d in delays[8:] if d is not None) < 0.08  # at the cap: 50-100 ms


def test_a_status_that_is_not_a_refusal_is_not_retried() -> None:
    class Unavailable(Refusal):
        def details(self) -> str:
            return "Connection reset by peer"

    assert RefusalRetry(None).delay(Unavailable()) is None


class RefusesThenHolds(Refuser):
    """Refuses the first streams, then never answers the next."""

    def _answer(self, connection: object, stream_id: int) -> None:
        pass


def test_an_attempt_after_refusals_gets_only_what_is_left_of_the_timeout() -> None:
    with refusing_server(RefusesThenHolds(refuse=4)) as server:
        with Client.connect(server.address) as client:
            started = time.monotonic()
            with pytest.raises(RpcError) as held:
                client.call(Echo.Say, Note(), timeout=0.5)
            spent = time.monotonic() - started
        assert held.value.code is StatusCode.DEADLINE_EXCEEDED
        assert spent < 0.9  # not a fresh timeout for the attempt that was held


def test_refusals_stop_at_the_calls_timeout_not_at_the_10_s_window() -> None:
    with refusing_server(Refuser(refuse=10**6)) as server:
        with Client.connect(server.address) as client:
            started = time.monotonic()
            with pytest.raises(RpcError) as refused:
                client.call(Echo.Say, Note(), timeout=1.5)
            spent = time.monotonic() - started
        assert refused.value.code in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED)
        assert 1.0 < spent < 3.0


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("timeout", [None, 2.0])
def test_no_attempt_is_scheduled_past_the_deadline_or_the_window(
    monkeypatch: pytest.MonkeyPatch, timeout: float | None
) -> None:
    clock = Clock()
    monkeypatch.setattr(calls, "time", clock)
    retry = RefusalRetry(timeout)
    for _ in range(8):  # the delays reach their cap: 50-100 ms
        assert retry.delay(Refusal()) is not None
    end = clock.now + (timeout if timeout is not None else RefusalRetry.WINDOW)
    clock.now = end - 0.04  # any delay now would end past it
    assert retry.delay(Refusal()) is None
    assert retry.timeout() == (None if timeout is None else pytest.approx(0.04))
