"""mypy --strict sees the declared types through a client (run in a subprocess).

``typed_usage.py`` must check clean: its ``assert_type`` lines pin every
client result type and its ``# type: ignore[...]`` lines must stay errors. A
copy with one type changed and one ignore dropped must fail, so the check
itself is known to bite; ``reveal_type`` on the same calls shows the types.
The same copy drops the ignores of two wrong ``bind()`` implementations, whose
errors (from ``transport.mypy_plugin``) must name the method and the fix.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
USAGE = HERE / "typed_usage.py"

REVEALS = """

def revealed(client: Client, aclient: AsyncClient, questions: list[Question]) -> None:
    reveal_type(client.call(Oracle.Ask, Question()))
    reveal_type(client.call(Oracle.Stream, Question()))
    reveal_type(next(client.call(Oracle.Converse, questions)))
    reveal_type(client.with_call(Oracle.Gather, questions))
    reveal_type(aclient.call(Oracle.Ask, Question()))
    reveal_type(aclient.call(Oracle.Stream, Question()))
"""

EXPECTED_REVEALS = [
    "regressed.Answer",
    "transport.client.streams.ResponseStream[regressed.Answer]",
    "regressed.Answer",
    "tuple[regressed.Answer, transport.metadata.CallInfo]",
    "typing.Awaitable[regressed.Answer]",
    "transport.client.aio_streams.AsyncResponseStream[regressed.Answer]",
]


def _mypy(*paths: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--show-error-codes", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_sees_the_declared_types(tmp_path: Path) -> None:
    source = USAGE.read_text()
    regressed = source.replace(
        "assert_type(client.call(Oracle.Ask, Question()), Answer)",
        "assert_type(client.call(Oracle.Ask, Question()), Question)",
    ).replace(
        'client.call(Oracle.Ask, "text")  # type: ignore[misc]', 'client.call(Oracle.Ask, "text")'
    )
    for wrong in ("bind(Oracle, WrongReply())", "bind(Oracle, WrongRequest())"):
        assert f"{wrong}  # type: ignore[arg-type]" in regressed
        regressed = regressed.replace(f"{wrong}  # type: ignore[arg-type]", wrong)
    assert regressed.count("Question)\n") > source.count("Question)\n")
    (tmp_path / "regressed.py").write_text(regressed + REVEALS)

    output = _mypy(USAGE, tmp_path / "regressed.py")

    assert not [line for line in output.splitlines() if "typed_usage.py" in line], output
    errors = [line for line in output.splitlines() if "regressed.py" in line and "error:" in line]
    assert any('is of type "Answer", not "Question"' in line for line in errors), output
    assert any('type parameter "Req"' in line for line in errors), output
    assert any(
        "WrongReply.Ask cannot serve Oracle.Ask (UnaryUnary[Question, Answer]): "
        'it is "Callable[[Question, Context], dict[str, str]]"; '
        'write "def Ask(self, request: Question, context: Context) -> Answer"' in line
        for line in errors
    ), output
    assert any(
        "WrongRequest.Ask cannot serve Oracle.Ask" in line
        and '"Callable[[Answer], Answer]"' in line
        for line in errors
    ), output
    assert len(errors) == 4, output
    revealed = re.findall(r'Revealed type is "(.*)"', output)
    assert revealed == EXPECTED_REVEALS
