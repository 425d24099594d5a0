"""Bursts from clients that are not this library's, against the interop servers, all served.

A client that keeps to the 64 streams a server announces is never refused:
grpc-js and a plain grpcio channel each put 2,000 unary calls at once on one
connection, three rounds, against ``python -m transport.interop server`` (sync
and ``--asyncio``) in a subprocess, and grpcio opens 200 long server streams
at once. Neither client retries a refused stream as this library's clients
do, so a refusal would show as UNAVAILABLE here.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import grpc.aio
import pytest

from tests.conformance.test_grpc_js_protobuf import grpc_js  # noqa: F401  (the fixture)

UNARY = "/grpc.testing.TestService/UnaryCall"
REQUEST = b'{"responseSize": 8}'
CALLS = 2_000
ROUNDS = 3
# Long streams: 10 responses each, 2 ms apart.
STREAMING = "/grpc.testing.TestService/StreamingOutputCall"
LONG = json.dumps({"responseParameters": [{"size": 8, "intervalUs": 2_000}] * 10}).encode()
STREAMS = 200

# One grpc-js client, one channel: ROUNDS bursts of CALLS generic unary calls
# (JSON bytes in and out), each round's outcomes as one JSON line.
BURST_JS = r"""
const grpc = require("@grpc/grpc-js");
const [address, calls, rounds] = process.argv.slice(2);
const client = new grpc.Client(address, grpc.credentials.createInsecure());
const bytes = (b) => b;
const request = Buffer.from('{"responseSize": 8}');
const one = () =>
  new Promise((resolve) => {
    const deadline = new Date(Date.now() + 60_000);
    client.makeUnaryRequest("/grpc.testing.TestService/UnaryCall", bytes, bytes, request,
      { deadline }, (err) => resolve(err ? grpc.status[err.code] : "OK"));
  });
(async () => {
  for (let round = 0; round < Number(rounds); round++) {
    const outcomes = await Promise.all(Array.from({ length: Number(calls) }, one));
    const counts = {};
    for (const outcome of outcomes) counts[outcome] = (counts[outcome] || 0) + 1;
    console.log(JSON.stringify(counts));
  }
  client.close();
})();
"""


@pytest.fixture(params=["sync", "asyncio"])
def interop_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """``python -m transport.interop server`` (sync or ``--asyncio``) on a free port."""
    command = [sys.executable, "-m", "transport.interop", "server", "--port", "0"]
    if request.param == "asyncio":
        command.append("--asyncio")
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            assert line.startswith("listening on "), line
            yield line.removeprefix("listening on ").strip()
        finally:
            server.terminate()
            server.wait(15)


def _plain_rounds(address: str) -> list[Counter[str]]:
    """ROUNDS bursts of CALLS calls at once on one ``grpc.insecure_channel``."""
    rounds = []
    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(UNARY)
        call(b"{}", timeout=30)  # connected
        for _ in range(ROUNDS):
            futures = [call.future(REQUEST, timeout=60) for _ in range(CALLS)]
            outcomes: Counter[str] = Counter()
            for future in futures:
                error = future.exception(timeout=90)
                outcomes["OK" if error is None else error.code().name] += 1  # type: ignore[attr-defined]
            rounds.append(outcomes)
    return rounds


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_plain_grpcio_burst_is_served_whole(interop_server: str) -> None:
    assert _plain_rounds(interop_server) == [Counter({"OK": CALLS})] * ROUNDS


async def _long_stream_rounds(address: str) -> list[Counter[str]]:
    """ROUNDS times STREAMS long server streams at once on one ``grpc.aio`` channel."""
    rounds = []
    async with grpc.aio.insecure_channel(address) as channel:
        call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(STREAMING)
        unary: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(UNARY)
        await unary(b"{}", timeout=30)  # connected

        async def one() -> str:
            try:
                responses = [response async for response in call(LONG, timeout=60)]
            except grpc.aio.AioRpcError as exc:
                return exc.code().name
            return "OK" if len(responses) == 10 else "SHORT"

        for _ in range(ROUNDS):
            rounds.append(Counter(await asyncio.gather(*(one() for _ in range(STREAMS)))))
    return rounds


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_plain_grpcio_long_streams_at_once_are_served_whole(interop_server: str) -> None:
    outcomes = asyncio.run(_long_stream_rounds(interop_server))
    assert outcomes == [Counter({"OK": STREAMS})] * ROUNDS


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_grpc_js_burst_is_served_whole(
    grpc_js: tuple[str, Path],  # noqa: F811  (the fixture imported above)
    interop_server: str,
) -> None:
    node, client_dir = grpc_js
    (client_dir / "burst.js").write_text(BURST_JS)
    run = subprocess.run(
        [node, "burst.js", interop_server, str(CALLS), str(ROUNDS)],
        cwd=client_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    rounds = [json.loads(line) for line in run.stdout.splitlines()]
    assert rounds == [{"OK": CALLS}] * ROUNDS
