"""The RunnerProtocol seed (001) end to end: Engage's oneof stream, Status, the CLI."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from transport import Empty, RpcError, StatusCode, bind
from transport.examples.runner import (
    CallFinished,
    ClientMsg,
    DataFrame,
    HttpHeader,
    RunnerMsg,
    RunnerProtocol,
    RunnerServer,
    TryCall,
    call_messages,
    engage,
    protocol,
)
from transport.examples.runner.__main__ import main
from transport.testing import TestServer

Serve = Callable[..., TestServer]


@pytest.fixture
def runner() -> RunnerServer:
    return RunnerServer(frame_size=4)


@pytest.fixture
def server(runner: RunnerServer, transport_serve: Serve, client_wire: str) -> TestServer:
    return transport_serve(bind(RunnerProtocol, runner), wire=client_wire)


def test_upper_runs_on_the_concatenated_body_and_streams_the_result(server: TestServer) -> None:
    outcome = engage(server.client, "upper", b"hello, runner", frame_size=3, timeout=10)
    assert outcome.body == b"HELLO, RUNNER"
    assert outcome.start is not None and outcome.start.http is not None
    assert outcome.start.http.status_code == 200
    assert HttpHeader(key="Content-Length", value="13") in outcome.start.http.headers
    finished = outcome.finished
    assert finished.success and not finished.error_str
    assert finished.created_at <= finished.started_at <= finished.completed_at
    assert finished.completed_at.endswith("Z")


def test_the_result_body_comes_in_frames_the_last_with_eof(server: TestServer) -> None:
    replies = list(server.client.call(RunnerProtocol.Engage, call_messages("echo", b"0123456789")))
    frames = [r.data for r in replies if r.data is not None]
    assert [f.data for f in frames] == [b"0123", b"4567", b"89"]
    assert [f.eof for f in frames] == [False, False, True]
    assert replies[0].result_start is not None and replies[-1].finished is not None


def test_an_empty_body_still_ends_with_one_eof_frame(server: TestServer) -> None:
    replies = list(server.client.call(RunnerProtocol.Engage, call_messages("echo")))
    assert [r.data for r in replies if r.data is not None] == [DataFrame(eof=True)]


@pytest.mark.parametrize(("fn", "code"), [("fail", 502), ("no-such-fn", 404)])
def test_a_failing_or_unknown_function_finishes_without_success(
    server: TestServer, fn: str, code: int
) -> None:
    outcome = engage(server.client, fn, b"x", timeout=10)
    assert outcome.start is None and outcome.body == b""
    assert not outcome.finished.success
    assert outcome.finished.error_code == code and outcome.finished.error_str


def _engage_raw(server: TestServer, messages: list[ClientMsg]) -> RpcError:
    with pytest.raises(RpcError) as caught:
        list(server.client.call(RunnerProtocol.Engage, messages, timeout=10))
    return caught.value


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([ClientMsg(data=DataFrame(data=b"x", eof=True))], "must be try"),
        ([ClientMsg(try_=TryCall(models_call_json="echo"))], "modelsCallJson"),
        ([ClientMsg(try_=TryCall(models_call_json='{"fn": 1}'))], "modelsCallJson"),
        ([ClientMsg(try_=TryCall(models_call_json='{"fn": "echo"}'))] * 2, "second try"),
        (
            [
                ClientMsg(try_=TryCall(models_call_json='{"fn": "echo"}')),
                ClientMsg(data=DataFrame()),
            ],
            "before a data frame with eof",
        ),
    ],
)
def test_out_of_order_messages_are_invalid_argument_and_the_runner_keeps_serving(
    server: TestServer, runner: RunnerServer, messages: list[ClientMsg], message: str
) -> None:
    error = _engage_raw(server, messages)
    assert error.code is StatusCode.INVALID_ARGUMENT
    assert message in error.message
    assert runner.engaged.wait_for(0, timeout=5)
    assert engage(server.client, "echo", b"still here", timeout=10).body == b"still here"


def test_a_message_with_both_or_neither_body_is_invalid_argument(server: TestServer) -> None:
    with pytest.raises(ValueError, match="only one of try, data"):
        ClientMsg(try_=TryCall(), data=DataFrame())
    for wire, error in (
        (b'{"try": {}, "data": {}}', "only one of try, data may be set"),
        (b"{}", "one of try, data must be set"),
    ):
        raw: Any = server.client.channel.stream_stream("/RunnerProtocol/Engage")
        with pytest.raises(grpc.RpcError) as caught:
            list(raw(iter([wire]), timeout=10))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error in str(caught.value.details())


def test_status_counts_the_engage_calls_in_flight(server: TestServer, runner: RunnerServer) -> None:
    client = server.client
    assert client.call(RunnerProtocol.Status, Empty()).active == 0
    with client.open(RunnerProtocol.Engage, timeout=10) as call:
        call.write(ClientMsg(try_=TryCall(models_call_json='{"fn": "echo"}')))
        assert runner.engaged.wait_for(1, timeout=5)
        status = client.call(RunnerProtocol.Status, Empty())
        assert status.active == 1 and not status.failed and status.completed_at
        call.write(ClientMsg(data=DataFrame(data=b"done", eof=True)))
        replies = list(call)
    assert replies[-1].finished is not None and replies[-1].finished.success
    assert runner.engaged.wait_for(0, timeout=5)
    assert client.call(RunnerProtocol.Status, Empty()).active == 0


def test_a_client_cancel_ends_the_engage_call(server: TestServer, runner: RunnerServer) -> None:
    call = server.client.open(RunnerProtocol.Engage, timeout=10)
    call.write(ClientMsg(try_=TryCall(models_call_json='{"fn": "echo"}')))
    assert runner.engaged.wait_for(1, timeout=5)
    call.cancel()
    assert runner.engaged.wait_for(0, timeout=5)


def test_the_wire_follows_the_proto3_json_mapping() -> None:
    request = RunnerProtocol.Engage.request_codec
    response = RunnerProtocol.Engage.response_codec
    assert request.encode(
        ClientMsg(try_=TryCall(models_call_json="{}", extensions={"a": "b"}))
    ) == (b'{"try":{"modelsCallJson":"{}","extensions":{"a":"b"}}}')
    assert request.encode(ClientMsg(data=DataFrame(data=b"\xff", eof=True))) == (
        b'{"data":{"data":"/w==","eof":true}}'
    )
    finished = RunnerMsg(finished=CallFinished(error_code=3, error_str="x"))
    assert response.encode(finished) == b'{"finished":{"errorCode":3,"errorStr":"x"}}'
    assert RunnerProtocol.Status.path == "/RunnerProtocol/Status"


def test_demo_runs_each_function(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["runner", "demo"])
    main()
    assert capsys.readouterr().out.splitlines() == [
        "echo: hello",
        "upper: HELLO, RUNNER",
        "fail: failed: RuntimeError: the function failed",
        "active: 0",
    ]


def test_the_docs_show_the_declaration_as_written() -> None:
    readme = Path(__file__).resolve().parents[2] / "docs" / "seeds.md"
    section = readme.read_text().split("\n## Seed: RunnerProtocol\n")[1].split("\n## ")[0]
    found = re.search(r"```py\n(.*?)```", section, re.S)
    assert found is not None
    source = {line.rstrip() for line in Path(protocol.__file__).read_text().splitlines()}
    assert [line for line in found.group(1).splitlines() if line and line not in source] == []
