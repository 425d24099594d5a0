"""The clients of docs/other-languages.md against the README's quickstart server, run for real."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from grpclib.client import Channel, UnaryUnaryMethod
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError

from tests.markdown_blocks import python_blocks, running_program, save_files
from tests.tools import NO_NODE, node_and_npm

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "other-languages.md").read_text()


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    save_files((ROOT / "README.md").read_text(), tmp_path)
    return tmp_path


def _js_client() -> str:
    found = re.search(r"^```js\n(.*?)^```", PAGE, re.S | re.M)
    assert found is not None
    return found.group(1)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_grpc_js_client_calls_the_quickstart_server(quickstart: Path, tmp_path: Path) -> None:
    tools = node_and_npm()
    if tools is None:
        pytest.skip(NO_NODE)
    client_dir = tmp_path / "js"
    client_dir.mkdir()
    install = subprocess.run(
        [*tools.npm, "install", "--no-audit", "--no-fund", "--silent", "@grpc/grpc-js"],
        cwd=client_dir,
        env=tools.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, f"npm install @grpc/grpc-js failed: {install.stderr}"
    (client_dir / "kv_client.js").write_text(_js_client())
    with running_program(quickstart, "server.py", "127.0.0.1:0") as address:
        run = subprocess.run(
            [tools.node, "kv_client.js", address],
            cwd=client_dir,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr
    # What the page shows the client printing.
    shown = re.search(r"^\$ node kv_client\.js \S+\n(.*?)^```", PAGE, re.S | re.M)
    assert shown is not None
    assert run.stdout == shown.group(1)


def _page_codec() -> type[CodecBase]:
    """The grpclib codec exactly as the page declares it."""
    namespace: dict[str, Any] = {}
    block = next(b for b in python_blocks(PAGE) if "CodecBase" in b)
    exec(compile(block, "docs/other-languages.md", "exec"), namespace)
    codec: type[CodecBase] = namespace["JsonCodec"]
    return codec


@pytest.mark.slow
@pytest.mark.anyio
async def test_grpclib_needs_the_proto_label(quickstart: Path) -> None:
    codec = _page_codec()
    assert codec.__dict__["__content_subtype__"] == "proto"

    class NaturalLabel(codec):  # type: ignore[misc,valid-type]
        __content_subtype__ = "json"

    with running_program(quickstart, "server.py", "127.0.0.1:0") as address:
        host, port = address.rsplit(":", 1)
        natural = Channel(host, int(port), codec=NaturalLabel())
        labelled = Channel(host, int(port), codec=codec())
        try:
            put = UnaryUnaryMethod(natural, "/kv.v1.KV/Put", dict, dict)
            with pytest.raises(GRPCError, match="Invalid content-type: 'application/grpc'"):
                await put({"key": "a", "value": "1"})
            # ... and yet the server ran the call: the value is stored.
            get = UnaryUnaryMethod(labelled, "/kv.v1.KV/Get", dict, dict)
            assert await get({"key": "a"}) == {"key": "a", "value": "1"}
        finally:
            natural.close()
            labelled.close()
