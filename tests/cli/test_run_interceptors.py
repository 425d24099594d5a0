"""``python -m transport run --interceptor MODULE:ATTR``: interceptors a real client observes."""

from __future__ import annotations

import asyncio

import pytest

from tests.cli.test_run import Run
from tests.run_app import KV, Key
from transport import AsyncClient, Client, RpcError, StatusCode
from transport.__main__ import main

pytestmark = pytest.mark.slow


def test_run_wraps_a_sync_binding_in_interceptors_outermost_first() -> None:
    interceptors = ["--interceptor", "tests.run_app:Stamp", "--interceptor", "tests.run_app:count"]
    with Run("tests.run_app:binding", "--port", "0", *interceptors) as run:
        with Client.connect(run.address, timeout=10) as client:
            for n in (1, 2):
                value, info = client.with_call(KV.Get, Key(key="k"))
                assert value.value == "sync:k"
                # The inner interceptor's entry first: it added it first, on the way out.
                assert info.trailing_metadata == (("x-count", str(n)), ("x-stamp", "Get:k"))
            with pytest.raises(RpcError) as refused:
                client.call(KV.Get, Key(key="forbidden"))
            assert refused.value.code is StatusCode.PERMISSION_DENIED
            assert refused.value.message == "the key forbidden is not served"
        assert run.stop()[0] == 0


def test_run_wraps_an_async_binding_in_an_async_interceptor() -> None:
    with Run(
        "tests.run_app:async_bindings", "--port", "0", "--interceptor", "tests.run_app:AsyncStamp"
    ) as run:

        async def calls() -> None:
            async with AsyncClient.connect(run.address, timeout=10) as client:
                value, info = await client.with_call(KV.Get, Key(key="k"))
                assert value.value == "async:k"
                assert info.trailing_metadata == (("x-stamp", "Get:k"),)
                with pytest.raises(RpcError) as refused:
                    await client.call(KV.Get, Key(key="forbidden"))
                assert refused.value.code is StatusCode.PERMISSION_DENIED

        asyncio.run(calls())
        assert run.stop()[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["tests.run_app:binding", "--interceptor", "tests.run_app:AsyncStamp"],
            "AsyncStamp.intercept is async def but KVServer's binding needs def intercept",
        ),
        (
            ["tests.run_app:async_bindings", "--interceptor", "tests.run_app:Stamp"],
            "Stamp.intercept is def but AsyncKVServer's binding needs async def intercept",
        ),
        (
            ["tests.run_app:binding", "--interceptor", "tests.run_app:KVServer"],
            "tests.run_app:KVServer returned KVServer, which has no intercept(call, request,",
        ),
        (
            ["tests.run_app:binding", "--interceptor", "tests.run_app:binding"],
            "tests.run_app:binding must be an interceptor",
        ),
        (
            ["tests.run_app:binding", "--interceptor", "tests.run_app:nope"],
            "module 'tests.run_app' has no attribute 'nope'",
        ),
    ],
)
def test_a_wrong_interceptor_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["run", *args]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and message in err, err
    assert err.count("\n") == 1
