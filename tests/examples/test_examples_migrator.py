"""The Migrator seed (000) end to end: Export, the server-driven Ingest stream, the CLI."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from transport import RpcError, StatusCode, bind
from transport.examples.migrator import (
    ExportRequest,
    IngestFileCopy,
    IngestFileResult,
    Migrator,
    MigratorServer,
    copy_for,
    ingest,
    parse_ingest,
    protocol,
)
from transport.examples.migrator.__main__ import main
from transport.testing import TestServer

Serve = Callable[..., TestServer]


def _source(root: Path) -> Path:
    (root / "weights" / "deep").mkdir(parents=True)
    (root / "weights" / "a.bin").write_bytes(b"\x00\x01\x02")
    (root / "weights" / "deep" / "b.bin").write_bytes(b"b" * 10)
    (root / "config.json").write_text('{"k": 1}')
    return root


def test_export_lists_the_files_of_the_state_dir_sorted(
    tmp_path: Path, transport_serve: Serve, client_wire: str
) -> None:
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "1.txt").write_text("1")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "empty-dir").mkdir()
    client = transport_serve(bind(Migrator, MigratorServer(tmp_path)), wire=client_wire).client
    assert client.call(Migrator.Export, ExportRequest()).paths == ["b.txt", "z/1.txt"]


def test_ingest_copies_files_and_directories_then_export_shows_them(
    tmp_path: Path, transport_serve: Serve, client_wire: str
) -> None:
    source = _source(tmp_path / "source")
    state = tmp_path / "state"
    server = MigratorServer(state, [("weights", "model/weights"), ("/config.json", "config.json")])
    client = transport_serve(bind(Migrator, server), wire=client_wire).client

    results = ingest(client, source, timeout=10)

    assert results == [
        IngestFileResult(source_path="weights", dest_path=str(state / "model/weights")),
        IngestFileResult(source_path="/config.json", dest_path=str(state / "config.json")),
    ]
    assert server.results == results
    assert client.call(Migrator.Export, ExportRequest()).paths == [
        "config.json",
        "model/weights/a.bin",
        "model/weights/deep/b.bin",
    ]
    assert (state / "model/weights/deep/b.bin").read_bytes() == b"b" * 10


def test_a_failed_copy_is_answered_with_its_error_and_the_stream_ends_ok(
    tmp_path: Path, transport_serve: Serve, client_wire: str
) -> None:
    server = MigratorServer(tmp_path / "state", [("missing.bin", "m.bin"), ("../../etc", "e")])
    client = transport_serve(bind(Migrator, server), wire=client_wire).client
    results = ingest(client, _source(tmp_path / "source"), timeout=10)
    assert [r.source_path for r in results] == ["missing.bin", "../../etc"]
    assert "FileNotFoundError" in results[0].error
    assert "outside the source directory" in results[1].error
    assert client.call(Migrator.Export, ExportRequest()).paths == []


def test_an_empty_plan_ends_the_stream_at_once(
    tmp_path: Path, transport_serve: Serve, client_wire: str
) -> None:
    client = transport_serve(bind(Migrator, MigratorServer(tmp_path)), wire=client_wire).client
    assert ingest(client, tmp_path, timeout=10) == []


def test_a_result_for_a_copy_never_asked_for_is_invalid_argument(
    tmp_path: Path, transport_serve: Serve, client_wire: str
) -> None:
    server = MigratorServer(tmp_path / "state", [("a", "a")])
    client = transport_serve(bind(Migrator, server), wire=client_wire).client
    with client.open(Migrator.Ingest, timeout=10) as stream:
        copy = next(stream)
        stream.write(IngestFileResult(source_path="other", dest_path=copy.dest_path))
        with pytest.raises(RpcError) as caught:
            next(stream)
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert caught.value.details == {"sourcePath": "other", "destPath": copy.dest_path}
    # The server keeps serving.
    assert client.call(Migrator.Export, ExportRequest()).paths == []


def test_stopping_before_every_copy_is_answered_is_invalid_argument(
    tmp_path: Path, transport_serve: Serve, client_wire: str
) -> None:
    server = MigratorServer(tmp_path / "state", [("a", "a"), ("b", "b")])
    client = transport_serve(bind(Migrator, server), wire=client_wire).client
    with client.open(Migrator.Ingest, timeout=10) as stream:
        first = next(stream)
        stream.write(IngestFileResult(source_path=first.source_path, dest_path=first.dest_path))
        stream.done_writing()
        assert next(stream).source_path == "b"
        with pytest.raises(RpcError) as caught:
            next(stream)
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert caught.value.details == {"unanswered": ["b"]}
    assert server.ingests.wait_for(0, timeout=5)


def test_a_client_cancel_leaves_no_ingest_running(
    tmp_path: Path, transport_serve: Serve, client_wire: str
) -> None:
    server = MigratorServer(tmp_path / "state", [("a", "a")])
    client = transport_serve(bind(Migrator, server), wire=client_wire).client
    stream = client.open(Migrator.Ingest, timeout=10)
    assert next(stream) == IngestFileCopy(source_path="a", dest_path=str(tmp_path / "state/a"))
    assert server.ingests.count == 1
    stream.cancel()
    assert server.ingests.wait_for(0, timeout=5)
    assert server.results == []


def test_copy_for_needs_an_absolute_destination(tmp_path: Path) -> None:
    result = copy_for(IngestFileCopy(source_path="config.json", dest_path="rel"), _source(tmp_path))
    assert "not an absolute path" in result.error


def test_the_plan_must_stay_inside_the_state_dir(tmp_path: Path) -> None:
    assert parse_ingest("/data/w:model/w") == ("/data/w", "model/w")
    with pytest.raises(ValueError, match="SRC:DEST"):
        parse_ingest("nocolon")
    with pytest.raises(ValueError, match="not inside"):
        MigratorServer(tmp_path, [("a", "../escape")])


def test_the_wire_names_follow_the_proto3_json_mapping() -> None:
    assert Migrator.Ingest.path == "/t1.fps.model.Migrator/Ingest"
    codec = Migrator.Ingest.request_codec
    wire = codec.encode(IngestFileResult(source_path="s", dest_path="d", error="e"))
    assert wire == b'{"sourcePath":"s","destPath":"d","error":"e"}'


def test_demo_ingests_and_exports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["migrator", "demo"])
    main()
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["exported config.json", "exported model/weights/layer1.bin"]


def test_the_docs_show_the_declaration_as_written() -> None:
    readme = Path(__file__).resolve().parents[2] / "docs" / "seeds.md"
    section = (
        readme.read_text()
        .split("\n## Seed: Migrator (t1.fps.model.Migrator)\n")[1]
        .split("\n## ")[0]
    )
    found = re.search(r"```py\n(.*?)```", section, re.S)
    assert found is not None
    source = {line.rstrip() for line in Path(protocol.__file__).read_text().splitlines()}
    assert [line for line in found.group(1).splitlines() if line and line not in source] == []
