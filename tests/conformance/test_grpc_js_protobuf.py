"""grpc-js with proto-loader (binary protobuf) against the seed servers, run for real.

The ``.proto`` files are the ones a user has: written by ``python -m transport
proto`` from the declarations (the seeds' current paths) or the seeds' own
upstream files (``/jina.JinaRPC/Call``, ``/scaleout.*``). The servers are the
seeds' ``serve`` commands in subprocesses; nothing of this library is on the
calling side.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.markdown_blocks import running_program
from tests.tools import NO_NODE, node_and_npm

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "protobuf.md").read_text()
SEED_PROTOS = ROOT / "tests" / "seed_protos"
PACKAGES = ["@grpc/grpc-js", "@grpc/proto-loader"]

# Test-only calls of the other seeds. Each prints one JSON line of what it saw.
SEEDS_CLIENT = r"""
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [runnerAt, scaleoutAt, combinerAt, jinaAt] = process.argv.slice(2);
const options = { keepCase: true, enums: String, defaults: true, oneofs: true };
const load = (file) => grpc.loadPackageDefinition(protoLoader.loadSync(file, options));
const insecure = grpc.credentials.createInsecure();
const gzip = { "grpc.default_compression_algorithm": 2 };

const unary = (client, method, request, metadata = new grpc.Metadata()) =>
  new Promise((resolve, reject) =>
    client[method](request, metadata, (err, reply) => (err ? reject(err) : resolve(reply))));
const collect = (call) =>
  new Promise((resolve, reject) => {
    const replies = [];
    call.on("data", (reply) => replies.push(reply));
    call.on("error", reject);
    call.on("end", () => resolve(replies));
  });
const failure = (promise) =>
  promise.then(() => null, (err) => ({ code: err.code, details: err.details }));

async function runner() {
  // Served with --compression gzip: the answers come back compressed.
  const { RunnerProtocol } = load("runner.proto");
  const client = new RunnerProtocol(runnerAt, insecure);
  const status = await unary(client, "Status", {});
  const engage = client.Engage();
  const replies = collect(engage);
  engage.write({ try: { models_call_json: '{"fn": "upper"}' } });
  engage.write({ data: { data: Buffer.from("hello, "), eof: false } });
  engage.write({ data: { data: Buffer.from("runner"), eof: true } });
  engage.end();
  const messages = await replies;
  client.close();
  return {
    active: status.active,
    failed: status.failed,
    kinds: messages.map((m) => m.body),
    http: messages[0].result_start.http.status_code,
    body: Buffer.concat(
      messages.filter((m) => m.body === "data").map((m) => m.data.data),
    ).toString(),
    success: messages[messages.length - 1].finished.success,
  };
}

async function scaleout(file, names, combinerTarget) {
  const { CombinerClient, ModelService } = names(load(file));
  // gzip: the heartbeat, the channel's first call, goes out compressed (grpc-js
  // stops compressing once it has read grpcio's "identity, deflate, gzip").
  const combiner = new CombinerClient(combinerTarget, insecure, gzip);
  const store = new ModelService(scaleoutAt, insecure);
  const heartbeat = { client_id: "edge-1", cpu_utilisation: 0.5 };
  const beat = await unary(combiner, "SendHeartbeat", heartbeat);
  const metadata = new grpc.Metadata();
  metadata.set("model-id", "m1");
  const uploaded = await new Promise((resolve, reject) => {
    const upload = store.Upload(metadata, (err, reply) => (err ? reject(err) : resolve(reply)));
    upload.write({ data: Buffer.from("abc") });
    upload.write({ data: Buffer.from("def") });
    upload.end();
  });
  const chunks = await collect(store.Download({ model_id: "m1" }));
  const missing = await failure(collect(store.Download({ model_id: "missing" })));
  combiner.close();
  store.close();
  return {
    heartbeat: beat.response,
    upload: uploaded.status,
    download: Buffer.concat(chunks.map((c) => c.data)).toString(),
    missing,
  };
}

async function jina() {
  const { JinaRPC } = load("jina.proto").jina;
  const client = new JinaRPC(jinaAt, insecure);
  const doc = (id, vector) => ({
    id,
    embedding: {
      dense: { buffer: Buffer.from(new Float32Array(vector).buffer), shape: [3], dtype: "<f4" },
    },
  });
  const call = client.Call();
  const replies = collect(call);
  call.write({ request_id: "1", index: { docs: [doc("a", [1, 0, 0]), doc("b", [0, 1, 0])] } });
  call.write({ request_id: "2", search: { docs: [doc("q", [0.9, 0.1, 0])] } });
  call.end();
  const [indexed, found] = await replies;
  client.close();
  const matches = found.search.docs[0].matches;
  return {
    indexed: [indexed.request_id, indexed.status.code],
    found: found.request_id,
    matches: matches.map((m) => m.id),
    score: [matches[0].score.op_name, matches[0].score.value],
  };
}

(async () => {
  const seen = {
    runner: await runner(),
    scaleout: await scaleout("scaleout_current.proto", (pkg) => pkg, combinerAt),
    scaleout_upstream: await scaleout("scaleout.proto", (pkg) => pkg.scaleout, scaleoutAt),
    jina: await jina(),
  };
  console.log(JSON.stringify(seen));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
"""


# A gRPC message frame whose compressed flag is set and whose payload is gzip.
GZIP_MESSAGE = re.compile(rb"\x01....\x1f\x8b\x08", re.S)


class Relay:
    """A TCP relay in front of a server that keeps the bytes of each direction.

    HTTP/2 DATA frames carry gRPC messages as they are: a compressed message
    shows as its flag byte 1, its length, then gzip's magic number.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.sent = bytearray()  # client to server
        self.answered = bytearray()  # server to client
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with self._listener:
            while True:
                try:
                    peer, _ = self._listener.accept()
                except OSError:
                    return
                server = socket.create_connection(self._target)
                for source, sink, log in ((peer, server, self.sent), (server, peer, self.answered)):
                    threading.Thread(
                        target=self._pipe, args=(source, sink, log), daemon=True
                    ).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, log: bytearray) -> None:
        try:
            while data := source.recv(65536):
                with self._lock:
                    log += data
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        """Stop accepting (connections in flight end with their peers)."""
        self._listener.close()

    def compressed(self, log: bytearray) -> int:
        """How many gzip-compressed gRPC messages went one way."""
        with self._lock:
            return len(GZIP_MESSAGE.findall(bytes(log)))


def _page_client() -> str:
    """The grpc-js client of docs/protobuf.md, as a reader copies it."""
    found = re.search(r"^```js\n(// migrator_client\.js.*?)^```", PAGE, re.S | re.M)
    assert found is not None
    return found.group(1)


def _export(*services: str) -> str:
    """``python -m transport proto SERVICES``: the ``.proto`` a user writes."""
    done = subprocess.run(
        [sys.executable, "-m", "transport", "proto", *services],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def grpc_js(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """node, and a directory with @grpc/grpc-js and @grpc/proto-loader installed."""
    tools = node_and_npm()
    if tools is None:
        pytest.skip(NO_NODE)
    client_dir = tmp_path_factory.mktemp("grpc_js")
    install = subprocess.run(
        [*tools.npm, "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
        cwd=client_dir,
        env=tools.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, f"npm install failed: {install.stderr}"
    yield tools.node, client_dir


def _seed(name: str, *options: str) -> list[str]:
    return ["-m", f"transport.examples.{name}", "serve", "--port", "0", *options]


def _node(node: str, client_dir: Path, *arguments: str) -> str:
    run = subprocess.run(
        [node, *arguments], cwd=client_dir, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_pages_grpc_js_client_ingests_and_exports(
    grpc_js: tuple[str, Path], tmp_path: Path
) -> None:
    node, client_dir = grpc_js
    (client_dir / "migrator.proto").write_text(_export("transport.examples.migrator:Migrator"))
    (client_dir / "migrator_client.js").write_text(_page_client())
    (client_dir / "weights").mkdir()
    (client_dir / "weights" / "layer1.bin").write_bytes(b"\x00\x01" * 64)
    state = tmp_path / "state"
    options = ["--wire", "protobuf", "--state", str(state), "--ingest", "weights:model/weights"]
    with running_program(client_dir, *_seed("migrator", *options)) as address:
        printed = _node(node, client_dir, "migrator_client.js", address)
    shown = re.search(r"^\$ node migrator_client\.js \S+\n(.*?)^```", PAGE, re.S | re.M)
    assert shown is not None
    assert printed == shown.group(1)
    # The copy really happened, into the server's state directory.
    assert (state / "model" / "weights" / "layer1.bin").read_bytes() == b"\x00\x01" * 64


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_grpc_js_calls_the_runner_scaleout_and_jina_seeds(grpc_js: tuple[str, Path]) -> None:
    node, client_dir = grpc_js
    (client_dir / "runner.proto").write_text(_export("transport.examples.runner:RunnerProtocol"))
    (client_dir / "scaleout_current.proto").write_text(
        _export(
            "transport.examples.scaleout:CombinerClient", "transport.examples.scaleout:ModelService"
        )
    )
    for upstream in ("scaleout.proto", "jina.proto"):
        shutil.copy(SEED_PROTOS / upstream, client_dir / upstream)
    (client_dir / "seeds_client.js").write_text(SEEDS_CLIENT)
    with ExitStack() as servers:
        runner = servers.enter_context(
            running_program(client_dir, *_seed("runner", "--compression", "gzip"))
        )
        scaleout = servers.enter_context(running_program(client_dir, *_seed("scaleout")))
        jina = servers.enter_context(running_program(client_dir, *_seed("jina")))
        runner_relay, combiner_relay = Relay(runner), Relay(scaleout)
        servers.callback(runner_relay.close)
        servers.callback(combiner_relay.close)
        seen: dict[str, Any] = json.loads(
            _node(
                node,
                client_dir,
                "seeds_client.js",
                runner_relay.address,
                scaleout,
                combiner_relay.address,
                jina,
            )
        )
    # Status (google.protobuf.Empty) and Engage, answered in gzip by the server.
    runner_seen = seen["runner"]
    assert (runner_seen["active"], runner_seen["failed"]) == (0, False)
    assert runner_seen["http"] == 200 and runner_seen["success"] is True
    assert runner_seen["body"] == "HELLO, RUNNER"
    kinds = runner_seen["kinds"]
    assert kinds[0] == "result_start" and kinds[-1] == "finished"
    assert set(kinds[1:-1]) == {"data"}
    # grpcio sends a message as is when gzip would not make it smaller.
    assert runner_relay.compressed(runner_relay.answered) > 0
    assert runner_relay.compressed(runner_relay.sent) == 0
    # Both paths, /CombinerClient/... and /scaleout.CombinerClient/...
    for path in ("scaleout", "scaleout_upstream"):
        assert seen[path] == {
            "heartbeat": "Heartbeat received",
            "upload": "OK",
            "download": "abcdef",
            "missing": {"code": 5, "details": "no model 'missing'"},  # NOT_FOUND
        }
    # The heartbeat went out in gzip, and the server answered it as usual.
    assert combiner_relay.compressed(combiner_relay.sent) == 1
    assert seen["jina"]["indexed"] == ["1", "SUCCESS"]
    assert seen["jina"]["found"] == "2"
    assert seen["jina"]["matches"] == ["a", "b"]
    op_name, value = seen["jina"]["score"]
    assert op_name == "cosine"
    assert value == pytest.approx(0.9 / (0.9**2 + 0.1**2) ** 0.5, rel=1e-6)
