"""``connect()``'s channel options reach the channel: retries, keepalive, user agent, raw options.

Each is shown against a real server: a plain grpcio generic handler that fails
the first attempts, records the metadata it is sent, or holds a call open
while the client pings.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

from tests.echo_service import Echo, Note
from transport import (
    AsyncClient,
    Client,
    Keepalive,
    RetryPolicy,
    RpcError,
    StatusCode,
    keepalive_enforcement,
)
from transport.client.channel import channel_options
from transport.testing import serve


@contextmanager
def _connected(
    server: RawEcho, *, server_options: Sequence[tuple[str, Any]] = (), **options: Any
) -> Iterator[Client]:
    """A client connected with ``options`` to ``server`` served on 127.0.0.1."""
    with (
        serve(server, options=server_options) as test_server,
        Client.connect(test_server.address, **options) as client,
    ):
        yield client


RETRY = RetryPolicy(codes=[StatusCode.UNAVAILABLE], max_attempts=3, initial_backoff=0.01)


class RawEcho:
    """Echo.Say in plain grpcio: fails its first ``failures`` attempts UNAVAILABLE, then echoes.

    It records every call's metadata; ``hold`` seconds it waits before answering.
    """

    def __init__(self, failures: int = 0, hold: float = 0.0) -> None:
        self.failures = failures
        self.hold = hold
        self.attempts = 0
        self.metadata: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add_to(self, server: Any) -> None:
        """Mount Echo.Say on ``server``."""
        handler = grpc.method_handlers_generic_handler(
            "transport.tests.Echo", {"Say": grpc.unary_unary_rpc_method_handler(self._say)}
        )
        server.add_generic_rpc_handlers((handler,))

    def _say(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self._lock:
            self.attempts += 1
            attempt = self.attempts
            self.metadata.append(dict(context.invocation_metadata()))
        if attempt <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"attempt {attempt} refused")
        if self.hold:
            ended = threading.Event()
            context.add_callback(ended.set)
            ended.wait(self.hold)  # or until the call ends
        return request


def test_a_retry_policy_sends_the_call_again_until_it_succeeds() -> None:
    server = RawEcho(failures=2)
    with _connected(server, timeout=5.0, retry=RETRY) as client:
        assert client.call(Echo.Say, Note(text="hi")) == Note(text="hi")
    assert server.attempts == 3


def test_without_a_retry_policy_the_first_failure_is_the_callers() -> None:
    server = RawEcho(failures=2)
    with _connected(server, timeout=5.0) as client, pytest.raises(RpcError) as caught:
        client.call(Echo.Say, Note(text="hi"))
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert server.attempts == 1


def test_a_retry_policy_gives_up_after_its_attempts() -> None:
    server = RawEcho(failures=5)
    with _connected(server, timeout=5.0, retry=RETRY) as client, pytest.raises(RpcError) as caught:
        client.call(Echo.Say, Note(text="hi"))
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert server.attempts == 3


def test_a_retry_policy_retries_only_the_codes_it_lists() -> None:
    server = RawEcho(failures=2)
    policy = RetryPolicy(codes=["ABORTED"], max_attempts=5, initial_backoff=0.01)
    with _connected(server, timeout=5.0, retry=policy) as client, pytest.raises(RpcError) as caught:
        client.call(Echo.Say, Note(text="hi"))
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert server.attempts == 1


async def test_the_asyncio_client_takes_the_retry_policy_too() -> None:
    server = RawEcho(failures=2)
    with serve(server) as test_server:
        client = AsyncClient.connect(test_server.address, timeout=5.0, retry=RETRY)
        try:
            assert await client.call(Echo.Say, Note(text="hi")) == Note(text="hi")
        finally:
            await client.close()
    assert server.attempts == 3


PINGING = Keepalive(time=0.05, timeout=5.0)
# grpc-core sends a keepalive ping without data at most once a second; the
# library's servers take one at most every 5 minutes. With one strike allowed,
# the third ping (about 2 s in, later if the server's strikes were reset)
# closes the connection: GOAWAY too_many_pings.
STRICT = [("grpc.http2.max_ping_strikes", 1)]


def test_keepalive_pings_reach_the_server() -> None:
    with (
        _connected(
            RawEcho(hold=8.0), timeout=10.0, keepalive=PINGING, server_options=STRICT
        ) as client,
        pytest.raises(RpcError) as caught,
    ):
        client.call(Echo.Say, Note(text="quiet"))
    assert caught.value.code is StatusCode.UNAVAILABLE
    assert "too many pings" in caught.value.message.lower()


def test_a_quiet_call_without_keepalive_keeps_its_connection() -> None:
    with _connected(RawEcho(hold=2.5), timeout=10.0, server_options=STRICT) as client:
        assert client.call(Echo.Say, Note(text="quiet")) == Note(text="quiet")


def test_a_server_that_permits_the_pings_keeps_the_connection() -> None:
    enforcement = [*STRICT, *keepalive_enforcement(min_ping_interval=0.01)]
    with _connected(
        RawEcho(hold=2.5), timeout=10.0, keepalive=PINGING, server_options=enforcement
    ) as client:
        assert client.call(Echo.Say, Note(text="quiet")) == Note(text="quiet")


def _spread(load_balancing: str | None, calls: int) -> tuple[int, int]:
    """How many of ``calls`` each of two servers behind one target served."""
    first, second = RawEcho(), RawEcho()
    with serve(first) as one, serve(second) as two:
        target = f"ipv4:127.0.0.1:{one.port},127.0.0.1:{two.port}"
        with Client.connect(target, timeout=5.0, load_balancing=load_balancing) as client:
            # round_robin picks among the addresses connected so far: call
            # until both have answered, or enough calls that one would have.
            for _ in range(calls):
                client.call(Echo.Say, Note(text="hi"), wait_for_ready=True)
                if first.attempts and second.attempts:
                    break
    return first.attempts, second.attempts


def test_round_robin_spreads_calls_over_the_targets_addresses() -> None:
    assert all(_spread("round_robin", 200))


def test_pick_first_keeps_to_one_address() -> None:
    assert sorted(_spread(None, 20)) == [0, 20]


def test_the_user_agent_leads_the_servers_user_agent_header() -> None:
    server = RawEcho()
    with _connected(server, timeout=5.0, user_agent="inventory/2.1") as client:
        client.call(Echo.Say, Note(text="hi"))
    assert str(server.metadata[0]["user-agent"]).startswith("inventory/2.1 grpc-python/")


def test_a_raw_option_replaces_the_librarys_own() -> None:
    # The library sets a 4 MiB receive limit; a raw option given last wins.
    with serve(RawEcho()) as test_server:
        small = [("grpc.max_receive_message_length", 64)]
        with Client.connect(test_server.address, timeout=5.0, options=small) as client:
            with pytest.raises(RpcError) as caught:
                client.call(Echo.Say, Note(text="x" * 200))
            assert client.call(Echo.Say, Note(text="short")) == Note(text="short")
    assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED


def test_channel_options_name_each_argument_once() -> None:
    chosen = channel_options(
        keepalive=Keepalive(time=30, permit_without_calls=True),
        retry=RETRY,
        load_balancing="round_robin",
        user_agent="inventory/2.1",
        options=[("grpc.keepalive_time_ms", 60_000), ("grpc.so_reuseport", 0)],
    )
    names = [name for name, _ in chosen]
    assert len(names) == len(set(names))
    found = dict(chosen)
    assert found["grpc.keepalive_time_ms"] == 60_000
    assert found["grpc.keepalive_timeout_ms"] == 20_000
    assert found["grpc.keepalive_permit_without_calls"] == 1
    assert found["grpc.lb_policy_name"] == "round_robin"
    assert found["grpc.enable_retries"] == 1
    assert json.loads(found["grpc.service_config"])["methodConfig"][0]["retryPolicy"] == {
        "maxAttempts": 3,
        "initialBackoff": "0.01s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }


NOT_A_PAIR: Any = ("grpc.max_receive_message_length",)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: RetryPolicy(codes=[]), "must list the statuses"),
        (lambda: RetryPolicy(codes="UNAVAILABLE"), "must list the statuses"),
        (lambda: RetryPolicy(codes=["NOPE"]), "not a gRPC status"),
        (lambda: RetryPolicy(codes=[StatusCode.OK]), "OK is not a failure"),
        (lambda: RetryPolicy(codes=["UNAVAILABLE"], max_attempts=1), "must be 2 to 5"),
        (lambda: RetryPolicy(codes=["UNAVAILABLE"], max_attempts=6), "must be 2 to 5"),
        (lambda: RetryPolicy(codes=["UNAVAILABLE"], initial_backoff=0), "positive"),
        (
            lambda: RetryPolicy(codes=["UNAVAILABLE"], initial_backoff=2, max_backoff=1),
            "at least initial_backoff",
        ),
        (lambda: Keepalive(time=-1), "positive number of seconds"),
        (lambda: Keepalive(time=10, timeout=0), "positive number of seconds"),
        (lambda: channel_options(load_balancing="random"), "round_robin"),
        (lambda: channel_options(user_agent=""), "non-empty"),
        (lambda: channel_options(options=[NOT_A_PAIR]), "(name, value) pairs"),
        (lambda: keepalive_enforcement(min_ping_interval=-1), "must not be negative"),
    ],
)
def test_bad_channel_settings_are_refused_clearly(make: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_connect_refuses_bad_settings_before_opening_a_channel() -> None:
    with pytest.raises(ValueError, match="load_balancing"):
        Client.connect("127.0.0.1:1", load_balancing="random")
    with pytest.raises(TypeError, match=r"transport\.RetryPolicy"):
        Client.connect("127.0.0.1:1", retry={"codes": ["UNAVAILABLE"]})  # type: ignore[arg-type]
