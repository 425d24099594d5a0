"""The asyncio client reports the server's status when a write races the call's end."""

from __future__ import annotations

import collections
import inspect
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import grpc
import pytest
from grpc.aio import _call

from transport import AsyncContext, Message, RpcError, Service, StatusCode, _grpc_fixes, bind, rpc
from transport.testing import serve_async


class Item(Message):
    n: int = 0


class Early(Service, Protocol, name="transport.tests.Early"):
    @rpc
    def Both(self, requests: Iterator[Item]) -> Iterator[Item]: ...

    @rpc
    def Upload(self, requests: Iterator[Item]) -> Item: ...


class RefuseAtOnce:
    """Ends every call before reading a single request."""

    async def Both(
        self, requests: AsyncIterator[Item], context: AsyncContext
    ) -> AsyncIterator[Item]:
        raise RpcError(StatusCode.NOT_FOUND, "no such stream")
        yield Item()  # pragma: no cover - makes this an async generator

    async def Upload(self, requests: AsyncIterator[Item], context: AsyncContext) -> Item:
        raise RpcError(StatusCode.FAILED_PRECONDITION, "not now")


@pytest.mark.anyio
async def test_a_write_racing_the_servers_status_reports_that_status() -> None:
    # grpc/grpc#36066: before transport._grpc_fixes, about 7% of these came back
    # INTERNAL "Internal error from Core" instead of the server's status.
    seen: collections.Counter[tuple[str, str]] = collections.Counter()
    async with serve_async(bind(Early, RefuseAtOnce())) as server:
        for _ in range(150):
            with pytest.raises(RpcError) as bidi:
                _ = [item async for item in server.client.call(Early.Both, [Item(), Item(n=1)])]
            seen[(bidi.value.code.name, bidi.value.message)] += 1
            with pytest.raises(RpcError) as upload:
                await server.client.call(Early.Upload, [Item(), Item(n=1), Item(n=2)])
            seen[(upload.value.code.name, upload.value.message)] += 1
    assert seen == {("NOT_FOUND", "no such stream"): 150, ("FAILED_PRECONDITION", "not now"): 150}


def test_the_fix_is_installed_on_this_grpcio() -> None:
    # A grpcio outside the checked window, or one whose _write changed, fails
    # here: re-check grpc/grpc#36066 on it (the test above, with
    # TRANSPORT_GRPC_AIO_WRITE_FIX=0 it must fail, with the fix pass), then
    # widen _WINDOW and add the new fingerprint, or drop the fix if not needed.
    assert _grpc_fixes.apply() is _grpc_fixes.State.INSTALLED, _grpc_fixes.refusal(
        grpc.__version__, inspect.getsource(_call._StreamRequestMixin._write)
    )
    assert _call._StreamRequestMixin._write.__module__ == "transport._grpc_fixes"


def test_only_the_checked_grpcio_and_method_get_the_fix() -> None:
    source = inspect.getsource(_grpc_fixes._fixed_write())  # any text other than grpcio's
    known = "async def _write(self, request: RequestType) -> None:\n"
    assert _grpc_fixes.refusal("1.83.2", source) == (
        "grpcio 1.83.2 is outside 1.84 to 1.85, the releases this fix was checked against"
    )
    assert "outside" in (_grpc_fixes.refusal("1.86.0", known) or "")
    assert _grpc_fixes.refusal("1.85.3", source) == (
        "grpcio 1.85.3 changed grpc.aio._call._StreamRequestMixin._write"
    )
    assert _grpc_fixes.refusal("1.85.3", None) is not None
    assert _grpc_fixes.refusal("2.x", known) is not None


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_environment_variable_turns_the_fix_off() -> None:
    done = _python(
        """
        import transport, transport.client.aio
        from grpc.aio import _call
        from transport import _grpc_fixes
        print(_grpc_fixes.apply().name, _call._StreamRequestMixin._write.__module__)
        """,
        TRANSPORT_GRPC_AIO_WRITE_FIX="0",
    )
    assert done.stdout.split() == ["DISABLED", "grpc.aio._call"]
    assert done.stderr == ""


def test_an_unchecked_grpcio_is_left_alone_with_one_warning() -> None:
    done = _python(
        """
        import logging
        logging.basicConfig(format="%(levelname)s %(message)s")
        import grpc
        grpc.__version__ = "9.0.0"
        import transport, transport.client.aio
        from grpc.aio import _call
        from transport import _grpc_fixes
        print(_grpc_fixes.apply().name, _call._StreamRequestMixin._write.__module__)
        """
    )
    assert done.stdout.split() == ["REFUSED", "grpc.aio._call"]
    [warning] = done.stderr.splitlines()
    assert warning.startswith("WARNING transport: grpc.aio client write fix (grpc/grpc#36066) not")
    assert "grpcio 9.0.0 is outside 1.84 to 1.85" in warning
