"""The runtime server end to end on loopback: every call, fencing, handles, limits, close."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator, Generator, Iterator
from concurrent import futures
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import grpc
import numpy as np
import numpy.typing as npt
import pytest

from transport import Client as RpcClient
from transport import DeclarationError, RpcError, StatusCode
from transport.runtime import (
    OWNER_METADATA_KEY,
    FileLeaseStore,
    ModelInfo,
    NoneBackend,
    OpenSessionRequest,
    Server,
    Service,
    Serving,
    dial_leader,
    dial_leader_async,
    running,
)
from transport.runtime.wire import (
    CloseSessionRequest,
    GenerateRequest,
    HealthRequest,
    InferRequest,
    Runtime,
)

from ..eventually import eventually

ECHO = OpenSessionRequest(type="echo", path="models/echo")
Arrays = dict[str, npt.NDArray[Any]]


@contextmanager
def daemon(service: Service, **options: Any) -> Iterator[Serving]:
    """A daemon (grpc.aio, its own event loop) on a thread, for sync tests."""
    started: queue.SimpleQueue[Serving | BaseException] = queue.SimpleQueue()
    control: dict[str, Any] = {}

    async def main() -> None:
        control["loop"], control["stop"] = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with running(service, **options) as serving:
                started.put(serving)
                await control["stop"].wait()
        except BaseException as exc:
            started.put(exc)

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    result = started.get(timeout=10)
    if isinstance(result, BaseException):
        thread.join()
        raise result
    try:
        yield result
    finally:
        control["loop"].call_soon_threadsafe(control["stop"].set)
        thread.join(timeout=15)
        assert not thread.is_alive()


class CountingSession:
    """A session that doubles its inputs and counts how it is used."""

    def __init__(self, info: ModelInfo) -> None:
        self.info = info
        self.closes = 0
        self.generators_closed = 0
        self.proceed = threading.Event()
        self.events: list[str] = []

    def _words(self, prompt: str) -> Generator[str, None, None]:
        try:
            for word in prompt.split():
                if word == "wait":
                    assert self.proceed.wait(5)
                yield word
        finally:
            self.generators_closed += 1


class SyncSession(CountingSession):
    def infer(self, inputs: Arrays) -> Arrays:
        self.events.append("infer")
        try:
            if "wait" in inputs:
                assert self.proceed.wait(5)
            return {name: value * 2 for name, value in inputs.items()}
        finally:
            self.events.append("infer done")

    def generate(self, prompt: str, max_tokens: int) -> Iterator[str]:
        return self._words(prompt)  # ignores max_tokens: the server caps it

    def close(self) -> None:
        self.events.append("close")
        self.closes += 1


class AsyncSession(CountingSession):
    async def infer(self, inputs: Arrays) -> Arrays:
        self.events.append("infer")
        try:
            if "wait" in inputs:
                with anyio.fail_after(5):
                    while not self.proceed.is_set():
                        await anyio.sleep(0.005)
            return {name: value * 2 for name, value in inputs.items()}
        finally:
            self.events.append("infer done")

    async def generate(self, prompt: str, max_tokens: int) -> AsyncIterator[str]:
        try:
            for word in prompt.split():
                if word == "wait":
                    with anyio.fail_after(5):
                        while not self.proceed.is_set():
                            await anyio.sleep(0.005)
                yield word
        finally:
            self.generators_closed += 1

    async def close(self) -> None:
        self.events.append("close")
        self.closes += 1


class SyncBackend:
    session_type: type[SyncSession] | type[AsyncSession] = SyncSession

    def __init__(self) -> None:
        self.sessions: list[CountingSession] = []

    def describe(self, request: OpenSessionRequest) -> ModelInfo:
        if request.type != "double":
            raise RpcError(StatusCode.NOT_FOUND, f"no model type {request.type!r}")
        return ModelInfo(type="double", path=request.path, backend="counting", can_generate=True)

    def open_session(self, request: OpenSessionRequest) -> SyncSession | AsyncSession:
        session = self.session_type(self.describe(request))
        self.sessions.append(session)
        return session


class AsyncBackend:
    def __init__(self) -> None:
        self.sync = SyncBackend()
        self.sync.session_type = AsyncSession
        self.sessions = self.sync.sessions

    async def describe(self, request: OpenSessionRequest) -> ModelInfo:
        return self.sync.describe(request)

    async def open_session(self, request: OpenSessionRequest) -> SyncSession | AsyncSession:
        return self.sync.open_session(request)


DOUBLE = OpenSessionRequest(type="double", path="m", config={"ignored": [1, 2]})


@pytest.fixture(params=["sync", "async"])
def backend(request: pytest.FixtureRequest) -> SyncBackend | AsyncBackend:
    return SyncBackend() if request.param == "sync" else AsyncBackend()


def _code(call: Any) -> tuple[StatusCode, dict[str, str | bytes]]:
    with pytest.raises(RpcError) as caught:
        call()
    return caught.value.code, dict(caught.value.trailing_metadata)


def test_every_call_on_the_echo_backend() -> None:
    with (
        daemon(NoneBackend(), instance_id="owner-a", backend="none") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        assert client.health().ready and client.health().backend == "none"
        info = client.describe(ECHO)
        assert (info.type, info.path, info.backend, info.can_generate) == (
            "echo",
            "models/echo",
            "none",
            True,
        )
        with client.open_session(ECHO) as session:
            assert session.info == info
            inputs: Arrays = {
                "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
                "i64": np.array([-1, 2**40], dtype=np.int64),
                "flag": np.array([True, False]),
            }
            outputs = session.infer(inputs)
            assert outputs.keys() == inputs.keys()
            for name, value in inputs.items():
                assert outputs[name].dtype == value.dtype
                np.testing.assert_array_equal(outputs[name], value)
            assert list(session.generate("one two three four", 3)) == ["one", "two", "three"]
            assert list(session.generate("one two")) == ["one", "two"]
            assert list(session.generate("")) == []
            assert serving.server.session_count == 1
        assert serving.server.session_count == 0
        code, _ = _code(lambda: client.describe(OpenSessionRequest(type="llama")))
        assert code is StatusCode.NOT_FOUND


def test_the_runtime_clients_take_a_wire() -> None:
    # The runtime's messages carry no protobuf numbers yet: its calls stay JSON on either.
    with (
        daemon(NoneBackend(), instance_id="owner-a", backend="none", wire="protobuf") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5, wire="protobuf") as client,
    ):
        assert client.health().ready
        with client.open_session(ECHO) as session:
            np.testing.assert_array_equal(session.infer({"x": np.arange(3)})["x"], np.arange(3))
    with pytest.raises(ValueError, match="wire must be 'json' or 'protobuf'"):
        dial_leader("127.0.0.1:1", "owner-a", wire="xml")


def test_sync_and_async_backends_serve_the_same(backend: SyncBackend | AsyncBackend) -> None:
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        session = client.open_session(DOUBLE)
        assert session.info.type == "double"
        assert session.infer({"x": np.array([1.5])})["x"].tolist() == [3.0]
        # The server caps the stream at maxTokens, whatever the backend does.
        assert list(session.generate("a b c d", 2)) == ["a", "b"]
        session.close()
        session.close()  # once only
    assert [s.closes for s in backend.sessions] == [1]
    assert [s.generators_closed for s in backend.sessions] == [1]


def test_generate_numbers_its_messages() -> None:
    with daemon(NoneBackend(), instance_id="") as serving:
        client = RpcClient.connect(serving.endpoint, timeout=5)
        with dial_leader(serving.endpoint, "", timeout=5) as runtime:
            handle = runtime.open_session(ECHO).handle
        tokens = list(client.call(Runtime.Generate, GenerateRequest(handle=handle, prompt="x y")))
        assert [(t.index, t.text) for t in tokens] == [(0, "x"), (1, "y")]
        client.close()


def test_fencing_refuses_a_missing_or_other_owner_without_side_effects() -> None:
    backend = SyncBackend()
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        handle = client.open_session(DOUBLE).handle
        for metadata in ([(OWNER_METADATA_KEY, "owner-b")], None):
            with RpcClient.connect(serving.endpoint, timeout=5, metadata=metadata) as raw:
                for call in (
                    lambda: raw.call(Runtime.Describe, DOUBLE),
                    lambda: raw.call(Runtime.OpenSession, DOUBLE),
                    lambda: raw.call(Runtime.CloseSession, CloseSessionRequest(handle=handle)),
                    lambda: raw.call(Runtime.Infer, InferRequest(handle=handle)),
                    lambda: list(raw.call(Runtime.Generate, GenerateRequest(handle=handle))),
                ):
                    code, trailing = _code(call)
                    assert code is StatusCode.ABORTED
                    assert trailing[OWNER_METADATA_KEY] == "owner-a"
                # Health is not fenced.
                assert raw.call(Runtime.Health, HealthRequest()).instance_id == "owner-a"
        assert len(backend.sessions) == 1 and serving.server.session_count == 1
        assert backend.sessions[0].closes == 0 and backend.sessions[0].generators_closed == 0


def test_an_owner_without_its_lease_answers_unavailable_and_not_ready() -> None:
    with (
        daemon(NoneBackend(), instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        session = client.open_session(ECHO)
        serving.server.fence.lapse()
        status = client.health()
        assert (status.instance_id, status.ready) == ("owner-a", False)
        for call in (
            lambda: client.describe(ECHO),
            lambda: client.open_session(ECHO),
            lambda: session.infer({"x": np.zeros(1)}),
            lambda: list(session.generate("a b")),
        ):
            code, trailing = _code(call)
            assert code is StatusCode.UNAVAILABLE
            assert trailing[OWNER_METADATA_KEY] == "owner-a"
        serving.server.fence.hold(None)
        assert session.infer({"x": np.ones(1)})["x"].tolist() == [1.0]


def test_health_always_carries_ready_on_the_wire() -> None:
    with daemon(NoneBackend(), instance_id="owner-a", backend="none") as serving:
        serving.server.fence.lapse()
        with grpc.insecure_channel(serving.endpoint) as channel:
            health: Any = channel.unary_unary("/transport.v1.Runtime/Health")
            answer = json.loads(health(b"{}", timeout=5))
            assert answer == {"instanceId": "owner-a", "ready": False, "backend": "none"}
            describe: Any = channel.unary_unary("/transport.v1.Runtime/Describe")
            with pytest.raises(grpc.RpcError) as caught:
                describe(b'{"type": "echo"}', timeout=5)
            assert caught.value.code() == grpc.StatusCode.ABORTED


def test_bad_requests_are_invalid_argument_and_the_server_keeps_serving() -> None:
    with daemon(NoneBackend(), instance_id="owner-a") as serving:
        metadata = ((OWNER_METADATA_KEY, "owner-a"),)
        with grpc.insecure_channel(serving.endpoint) as channel:
            for method, body in (
                ("OpenSession", b'{"type": 7}'),
                ("Infer", b'{"handle": "h", "inputs": {"x": {"dtype": "float32"}}}'),
                ("Infer", b'{"handle": "h", "inputs": {"x": {"dtype": "object", "shape": []'),
                ("Describe", b"not json"),
            ):
                call: Any = channel.unary_unary(f"/transport.v1.Runtime/{method}")
                with pytest.raises(grpc.RpcError) as caught:
                    call(body, timeout=5, metadata=metadata)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            generate: Any = channel.unary_stream("/transport.v1.Runtime/Generate")
            with pytest.raises(grpc.RpcError) as caught:
                list(generate(b'{"handle": "h", "maxTokens": -1}', timeout=5, metadata=metadata))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with dial_leader(serving.endpoint, "owner-a", timeout=5) as client:
            assert client.health().ready


def test_unknown_closed_forged_and_foreign_handles_are_not_found() -> None:
    with (
        daemon(NoneBackend(), instance_id="owner-a") as a,
        daemon(NoneBackend(), instance_id="owner-b") as b,
        dial_leader(a.endpoint, "owner-a", timeout=5) as on_a,
        dial_leader(b.endpoint, "owner-b", timeout=5) as on_b,
    ):
        session = on_a.open_session(ECHO)
        on_b_session = on_b.open_session(ECHO)
        foreign = type(session)(on_b, session.handle, session.info)
        forged = type(session)(on_a, session.handle[:-2] + "AA", session.info)
        truncated = type(session)(on_a, session.handle[:-1], session.info)
        b_on_a = type(session)(on_a, on_b_session.handle, session.info)
        for stranger in (foreign, forged, truncated, b_on_a):
            code, _ = _code(lambda s=stranger: s.infer({"x": np.zeros(1)}))
            assert code is StatusCode.NOT_FOUND
            code, _ = _code(lambda s=stranger: list(s.generate("a")))
            assert code is StatusCode.NOT_FOUND
        session.close()
        code, _ = _code(lambda: session.infer({"x": np.zeros(1)}))
        assert code is StatusCode.NOT_FOUND
        code, _ = _code(lambda: on_a._call(Runtime.CloseSession, CloseSessionRequest(handle="x")))
        assert code is StatusCode.NOT_FOUND


def test_the_session_limit_is_resource_exhausted() -> None:
    with (
        daemon(NoneBackend(), instance_id="owner-a", max_sessions=2) as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        first, _ = client.open_session(ECHO), client.open_session(ECHO)
        with pytest.raises(RpcError) as caught:
            client.open_session(ECHO)
        assert caught.value.code is StatusCode.RESOURCE_EXHAUSTED
        assert caught.value.details == {"maxSessions": 2}
        first.close()
        client.open_session(ECHO)
        assert serving.server.session_count == 2


def test_idle_sessions_are_closed_once_after_the_timeout(
    backend: SyncBackend | AsyncBackend,
) -> None:
    with (
        daemon(backend, instance_id="owner-a", idle_timeout=0.3) as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        idle = client.open_session(DOUBLE)
        eventually(lambda: serving.server.session_count == 0, "idle expiry", 5)
        # Expired, then closed (a sync backend's close runs on a worker thread).
        eventually(lambda: [s.closes for s in backend.sessions] == [1], "the idle close", 5)
        code, _ = _code(lambda: idle.infer({"x": np.zeros(1)}))
        assert code is StatusCode.NOT_FOUND
        idle.close()  # already gone: a no-op
    assert [s.closes for s in backend.sessions] == [1]


def test_shutdown_closes_every_session_exactly_once(backend: SyncBackend | AsyncBackend) -> None:
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        sessions = [client.open_session(DOUBLE) for _ in range(5)]
        sessions[0].close()
        sessions[1].infer({"x": np.zeros(2)})
    assert [s.closes for s in backend.sessions] == [1] * 5


def test_close_during_generate_waits_for_the_stream(backend: SyncBackend | AsyncBackend) -> None:
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        session = client.open_session(DOUBLE)
        pieces = session.generate("a wait b")
        assert next(pieces) == "a"
        session.close()
        assert serving.server.session_count == 0
        (backend_session,) = backend.sessions
        assert backend_session.closes == 0  # still streaming
        backend_session.proceed.set()
        assert list(pieces) == ["wait", "b"]
        eventually(lambda: backend_session.closes == 1, "close after the stream", 5)


def test_a_client_that_cancels_mid_generate_leaks_nothing(
    backend: SyncBackend | AsyncBackend,
) -> None:
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        session = client.open_session(DOUBLE)
        pieces = session.generate("a wait b c")
        assert next(pieces) == "a"
        pieces.close()  # cancels the call
        (backend_session,) = backend.sessions
        backend_session.proceed.set()
        eventually(lambda: backend_session.generators_closed == 1, "generator closed", 5)
        assert serving.server.session_count == 1
        session.close()  # no call holds it any more: closed at once
        eventually(lambda: backend_session.closes == 1, "session closed", 5)
        assert serving.server.session_count == 0


def test_a_session_is_not_closed_under_a_running_call(
    backend: SyncBackend | AsyncBackend,
) -> None:
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        session = client.open_session(DOUBLE)
        with pytest.raises(RpcError) as caught:
            session.infer({"wait": np.zeros(1)}, timeout=0.2)
        assert caught.value.code is StatusCode.DEADLINE_EXCEEDED
        session.close()
        (backend_session,) = backend.sessions
        backend_session.proceed.set()
        eventually(lambda: backend_session.closes == 1, "session closed", 5)
        assert backend_session.events == ["infer", "infer done", "close"]


def test_an_unfenced_server_needs_no_metadata() -> None:
    with daemon(NoneBackend(), instance_id="", backend="none") as serving:
        assert serving.server.instance_id == "" and serving.server.holds_lease
        with RpcClient.connect(serving.endpoint, timeout=5) as raw:
            assert raw.call(Runtime.Describe, ECHO).type == "echo"
        with dial_leader(serving.endpoint, "", timeout=5) as client:
            assert client.health().instance_id == ""
            with client.open_session(ECHO) as session:
                assert session.infer({"x": np.ones(3)})["x"].sum() == 3


def test_the_server_mounts_on_grpc_aio_only() -> None:
    server = Server(NoneBackend(), "owner-a", "none")
    sync_server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    with pytest.raises(DeclarationError, match=r"grpc\.aio\.server"):
        server.register(sync_server)  # type: ignore[arg-type]
    sync_server.stop(None)


def test_mount_sees_both_servers_before_the_start() -> None:
    seen: list[tuple[Any, Server]] = []
    with daemon(
        NoneBackend(), mount=lambda grpc_server, server: seen.append((grpc_server, server))
    ) as serving:
        assert seen == [(serving.grpc_server, serving.server)]
        assert isinstance(seen[0][0], grpc.aio.Server)


def test_lease_state_is_observable() -> None:
    heard: list[bool] = []
    server = Server(NoneBackend(), "owner-a")
    server.subscribe(heard.append)
    assert server.holds_lease and server.health().ready
    server.fence.lapse()
    assert not server.holds_lease and heard == [False]
    server.fence.hold(None)
    asyncio.run(server.close())
    server.fence.lapse()  # the release after a close: no second report
    assert heard == [False, True, False]
    assert not server.holds_lease and not server.health().ready


def test_closing_an_unfenced_server_is_reported_once() -> None:
    heard: list[bool] = []
    server = Server(NoneBackend(), "")
    server.subscribe(heard.append)
    asyncio.run(server.close())
    asyncio.run(server.close())
    assert heard == [False] and not server.holds_lease


@pytest.mark.anyio
async def test_the_async_client(transport_serve_async: Any) -> None:
    async with running(NoneBackend(), instance_id="owner-a", backend="none") as serving:
        async with await dial_leader_async(serving.endpoint, "owner-a", timeout=5) as client:
            assert (await client.health()).ready
            assert (await client.describe(ECHO)).type == "echo"
            async with await client.open_session(ECHO) as session:
                out = await session.infer({"x": np.arange(3, dtype=np.uint8)})
                assert out["x"].tolist() == [0, 1, 2]
                assert [p async for p in session.generate("p q r", 2)] == ["p", "q"]
                assert serving.server.session_count == 1
            assert serving.server.session_count == 0
        async with await dial_leader_async(serving.endpoint, "owner-b", timeout=5) as stale:
            with pytest.raises(RpcError) as caught:
                await stale.describe(ECHO)
            assert caught.value.code is StatusCode.ABORTED


def test_graceful_handover_and_client_re_resolution(tmp_path: Path) -> None:
    lease = tmp_path / "lease"
    options: dict[str, Any] = {"lease": lease, "lease_ttl": 1.0, "backend": "none"}
    with ExitStack() as owner_a:
        a = owner_a.enter_context(daemon(NoneBackend(), instance_id="owner-a", **options))
        eventually(lambda: a.server.holds_lease, "owner-a holding", 5)
        with daemon(NoneBackend(), instance_id="owner-b", **options) as b:
            client = dial_leader(lease=lease, timeout=5)
            assert (client.endpoint, client.expected_owner) == (a.endpoint, "owner-a")
            old = client.open_session(ECHO)
            owner_a.close()  # a graceful stop releases the lease: owner-b takes over at once
            eventually(lambda: b.server.holds_lease, "owner-b taking over", 5)
            record = FileLeaseStore(lease).read()
            assert record is not None and (record.instance_id, record.term) == ("owner-b", 2)
            info = client.describe(ECHO, retry=True)  # re-resolves, then succeeds
            assert info.type == "echo"
            assert (client.endpoint, client.expected_owner) == (b.endpoint, "owner-b")
            code, _ = _code(lambda: old.infer({"x": np.zeros(1)}))
            assert code is StatusCode.NOT_FOUND
            with client.open_session(ECHO) as fresh:
                assert fresh.infer({"x": np.ones(1)})["x"].tolist() == [1.0]
            client.close()
