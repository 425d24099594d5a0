"""Infer and Generate check the fence again during the call (docs/runtime.md).

A lease that lapses while the model computes must not let the answer out:
the backend's sessions here wait on an event, the test lapses the fence
meanwhile, then lets the model finish. Each test fails if the server skips
the check after the model's work.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from transport import RpcError, StatusCode
from transport.runtime import OWNER_METADATA_KEY, dial_leader

from ..eventually import eventually
from .test_runtime_server import DOUBLE, AsyncBackend, SyncBackend, daemon


@pytest.fixture(params=["sync", "async"])
def backend(request: pytest.FixtureRequest) -> SyncBackend | AsyncBackend:
    return SyncBackend() if request.param == "sync" else AsyncBackend()


def test_a_lease_lapsed_during_infer_answers_unavailable_not_the_outputs(
    backend: SyncBackend | AsyncBackend,
) -> None:
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
        ThreadPoolExecutor(1) as pool,
    ):
        session = client.open_session(DOUBLE)
        answer = pool.submit(session.infer, {"wait": np.ones(1)})
        (model,) = backend.sessions
        eventually(lambda: "infer" in model.events, "the model computing", 5)
        serving.server.fence.lapse()
        model.proceed.set()
        with pytest.raises(RpcError) as caught:
            answer.result(timeout=10)
        assert caught.value.code is StatusCode.UNAVAILABLE
        assert dict(caught.value.trailing_metadata)[OWNER_METADATA_KEY] == "owner-a"
        assert model.events == ["infer", "infer done"]  # the model did finish: only refused


def test_a_lease_lapsed_during_generate_ends_the_stream_unavailable_with_no_further_token(
    backend: SyncBackend | AsyncBackend,
) -> None:
    with (
        daemon(backend, instance_id="owner-a") as serving,
        dial_leader(serving.endpoint, "owner-a", timeout=5) as client,
    ):
        session = client.open_session(DOUBLE)
        tokens = session.generate("first wait second third")
        assert next(tokens) == "first"
        (model,) = backend.sessions
        serving.server.fence.lapse()
        model.proceed.set()  # the model produces "wait", "second", "third" now
        received: list[str] = []
        with pytest.raises(RpcError) as caught:
            received.extend(tokens)
        assert received == []
        assert caught.value.code is StatusCode.UNAVAILABLE
        eventually(lambda: model.generators_closed == 1, "the model's generator closed", 5)
