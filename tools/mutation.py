"""Mutation testing of the modules whose bugs break safety or bounds.

A mutant is the code with one small change (``<`` for ``<=``, a call or a
``return`` removed...). A test file that still passes with it has not pinned
what the changed line does. Each module below is mutated alone, and each of
its mutants runs only the test files that cover that module, in a copy of
the tree (the work tree is never touched), one mutant at a time::

    python tools/mutation.py --list
    python tools/mutation.py --module transport/runtime/fence.py --budget 600
    python tools/mutation.py --all --budget 7200
    python tools/mutation.py --changed HEAD~1 --sample 12 --budget 540   # what CI runs

It prints, per module, the score (killed / (killed + survived)) and every
surviving mutant as a diff. A survivor listed in ``EQUIVALENT`` (with why
no test can tell it from the code) is reported as such and not counted.
``--fail-on-survivors`` makes any other survivor exit 1.

The mutations are cosmic-ray's (``pip install -e '.[mutation]'``), applied
by its own mutate-and-test runner, plus one operator of ours that removes a
statement: a call, a ``return``, a ``raise``, an augmented assignment. Type
annotations and logging calls are not mutated (nothing runs them).
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cosmic_ray.plugins
from cosmic_ray.ast import ast_nodes, get_ast_from_path
from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.operators.operator import Example, Operator
from cosmic_ray.work_item import MutationSpec, TestOutcome
from parso.python.tree import Keyword

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Target:
    """A module to mutate, the tests that cover it, and optionally the functions in scope."""

    tests: tuple[str, ...]
    functions: frozenset[str] = field(default_factory=frozenset)  # empty: the whole module
    pytest_args: tuple[str, ...] = ()


_NOT_SLOW = ("-m", "not slow")

MODULES: dict[str, Target] = {
    "transport/runtime/fence.py": Target(
        (
            "tests/runtime/test_runtime_fence.py",
            "tests/runtime/test_fence_state.py",
            "tests/runtime/test_fence_midcall.py",
        )
    ),
    "transport/runtime/handles.py": Target(
        ("tests/runtime/test_runtime_handles.py", "tests/runtime/test_handle_bound.py")
    ),
    "transport/runtime/sessions.py": Target(
        (
            "tests/runtime/test_runtime_sessions.py",
            "tests/runtime/test_lease_bounds.py",
            "tests/runtime/test_runtime_server.py",
        )
    ),
    "transport/runtime/lease.py": Target(
        (
            "tests/runtime/test_runtime_lease.py",
            "tests/runtime/test_lease_bounds.py",
            "tests/runtime/test_lease_errors.py",
        )
    ),
    "transport/runtime/etcd_lease.py": Target(
        ("tests/runtime/test_etcd_renew_refused.py", "tests/runtime/test_runtime_etcd.py"),
        pytest_args=_NOT_SLOW,
    ),
    "transport/client/slots.py": Target(
        ("tests/client/test_call_slots.py", "tests/client/test_call_bound_handoff.py"),
        pytest_args=_NOT_SLOW,
    ),
    "transport/client/calls.py": Target(
        (
            "tests/client/test_refusal_delays.py",
            "tests/client/test_refusal_retry.py",
            "tests/client/test_call_slots.py",
        ),
        functions=frozenset({"refused", "__init__", "delay", "timeout"}),
        pytest_args=_NOT_SLOW,
    ),
    "transport/encoding/json_codec.py": Target(
        (
            "tests/encoding/test_container_allowance.py",
            "tests/encoding/test_depth_bound.py",
            "tests/encoding/test_json_leniency.py",
            "tests/encoding/test_hostile_arrays.py",
            "tests/encoding/test_codec.py",
        ),
        functions=frozenset({"_scan", "_too_deep", "_check_containers", "_check_depth", "decode"}),
    ),
    "transport/encoding/batches.py": Target(("tests/encoding/test_batches.py",)),
    "transport/encoding/frames.py": Target(
        (
            "tests/encoding/test_frame_bounds.py",
            "tests/encoding/test_attachments.py",
            "tests/encoding/test_hostile_arrays.py",
        ),
        functions=frozenset({"decode_framed", "_place", "_child", "carries", "_aligned"}),
    ),
}

#: Survivors no test can kill: (module, the line stripped, operator, its column) -> why.
EQUIVALENT: dict[tuple[str, str, str, int], str] = {
    (
        "transport/client/calls.py",
        "ceiling = min(self.LONGEST_DELAY, self.FIRST_DELAY * 2 ** min(self._tries, 16))",
        "core/NumberReplacer",
        83,
    ): "the exponent's cap only keeps the float small: the delay is capped at 2**6",
    (
        "transport/client/calls.py",
        "if not (callable(code) and callable(details)) or code() != grpc.StatusCode.UNAVAILABLE:",
        "core/ReplaceComparisonOperator_NotEq_IsNot",
        60,
    ): "an enum member is a singleton: != and is not agree",
    (
        "transport/runtime/fence.py",
        "if holding != self._notified:",
        "core/ReplaceComparisonOperator_NotEq_IsNot",
        19,
    ): "True and False are singletons: != and is not agree on bools",
    (
        "transport/client/slots.py",
        "return None if timeout is None else max(0.0, timeout - (time.monotonic() - started))",
        "core/ReplaceBinaryOperator_Sub_Mod",
        81,
    ): "now % started is now - started while now < 2 * started (monotonic time since boot)",
    (
        "transport/runtime/etcd_lease.py",
        "if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):",
        "core/ReplaceComparisonOperator_Lt_NotEq",
        56,
    ): "the port is all digits: never below 0, so 0 < port and 0 != port agree",
    (
        "transport/runtime/fence.py",
        "self._valid_until = math.inf if holding else -math.inf",
        "core/ReplaceUnaryOperator_USub_Not",
        53,
    ): "not inf is 0, and the fence's clock (boot time) is never below 0: lapsed either way",
    (
        "transport/runtime/lease.py",
        "fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)",
        "core/ReplaceBinaryOperator_BitOr_BitXor",
        51,
    ): "the two flags share no bit: | and ^ give the same number",
    (
        "transport/runtime/lease.py",
        "def check(self, *, wait: bool = False) -> None:",
        "core/ReplaceFalseWithTrue",
        36,
    ): "a lease file (and the protocol's default) ignores wait: nothing to wait for",
    (
        "transport/runtime/sessions.py",
        "entry.closing = True",
        "core/ReplaceTrueWithFalse",
        32,
    ): "an expired entry is idle and already out of the table: no call reads its flag",
    (
        "transport/runtime/sessions.py",
        "idle = [e.last_used for e in self._entries.values() if e.users == 0]",
        "core/ReplaceComparisonOperator_Eq_LtE",
        75,
    ): "a session's count of users never goes below 0",
    (
        "transport/runtime/sessions.py",
        "return entry.session if entry.users == 0 else None",
        "core/ReplaceComparisonOperator_Eq_LtE",
        44,
    ): "a session's count of users never goes below 0",
    (
        "transport/encoding/batches.py",
        "return data[:1] == LEAD_BYTE",
        "core/ReplaceComparisonOperator_Eq_GtE",
        20,
    ): "the lead byte is 0xff: no byte string of one byte is greater",
    (
        "transport/encoding/json_codec.py",
        'if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:',
        "core/ReplaceComparisonOperator_LtE_Is",
        43,
    ): "a shortcut only: fewer brackets than the bound cannot nest past it, as the scan finds",
}


class RemoveStatement(Operator):  # type: ignore[misc]
    """Replace one statement with ``pass``: a call, ``return``, ``raise``, ``x += ...``."""

    def mutation_positions(self, node: Any) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
        """The statement of a one-statement line, if it is one worth removing."""
        if node.type == "simple_stmt" and _removable(node.children[0]):
            yield node.children[0].start_pos, node.children[0].end_pos

    def mutate(self, node: Any, index: int) -> Any:
        """The line with ``pass`` in place of its statement."""
        statement = node.children[0]
        node.children[0] = Keyword("pass", statement.start_pos, prefix=statement.prefix)
        node.children[0].parent = node
        return node

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        """What the operator does, for cosmic-ray's own checks."""
        return (Example("f(x)\n", "pass\n"), Example("return x\n", "pass\n"))


def _removable(statement: Any) -> bool:
    if statement.type in ("return_stmt", "raise_stmt"):
        return True
    code = statement.get_code(include_prefix=False)
    if statement.type == "expr_stmt":  # an assignment: only the augmented ones
        operator = statement.children[1]
        return operator.type == "operator" and operator.value not in ("=", ":")
    if code.split("(", 1)[0].split(".")[0] in ("log", "_log", "logger"):
        return False  # what is logged is not promised
    return statement.type in ("atom_expr", "power") and code.rstrip().endswith(")")


cosmic_ray.plugins.OPERATOR_PROVIDERS["transport"] = {"RemoveStatement": RemoveStatement}


def _annotations(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the module's type annotations are (start, end), and ``if TYPE_CHECKING:`` blocks."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        found: list[ast.expr | ast.stmt | None] = []
        if isinstance(node, ast.arg):
            found.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
        elif isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            found.append(node)
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("cast", "TypeVar"):
            found.extend(node.args[:1])
        for item in found:
            if item is not None and item.end_lineno is not None:
                end = (item.end_lineno, item.end_col_offset or 0)
                spans.append(((item.lineno, item.col_offset), end))
    return spans


def mutants(module: str, target: Target) -> list[MutationSpec]:
    """Every mutation of ``module`` in scope: none in annotations, only in ``target.functions``."""
    path = Path(module)
    skipped = _annotations(path.read_text())
    found = []
    tree = get_ast_from_path(path)
    for name in cosmic_ray.plugins.operator_names():
        operator = cosmic_ray.plugins.get_operator(name)
        if operator.arguments():
            continue  # operators that need arguments are not configured
        positions = (
            (node, span) for node in ast_nodes(tree) for span in operator().mutation_positions(node)
        )
        for occurrence, (node, (start, end)) in enumerate(positions):
            if any(low <= start < high for low, high in skipped):
                continue
            scope = _definition(node)
            if target.functions and scope not in target.functions:
                continue
            found.append(MutationSpec(path, name, occurrence, start, end, {}, scope))
    return found


def _definition(node: Any) -> str | None:
    while node is not None and node.type not in ("funcdef", "classdef"):
        node = node.parent
    return None if node is None else str(node.name.value)


@dataclass
class Report:
    """What the mutants of one module did."""

    module: str
    killed: int = 0
    survived: list[tuple[MutationSpec, str]] = field(default_factory=list)
    equivalent: list[tuple[MutationSpec, str]] = field(default_factory=list)
    not_run: int = 0
    baseline_failed: str = ""

    @property
    def score(self) -> float:
        """Killed over killed plus survived (equivalent ones counted as neither)."""
        judged = self.killed + len(self.survived)
        return self.killed / judged if judged else 1.0


def _command(target: Target) -> str:
    args = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *target.pytest_args]
    return shlex.join([sys.executable, *args, *target.tests])


def run_module(module: str, target: Target, *, deadline: float, sample: int | None) -> Report:
    """Mutate ``module`` in the current directory (a copy of the tree) until ``deadline``."""
    report = Report(module)
    command = _command(target)
    started = time.monotonic()
    baseline = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if baseline.returncode != 0:
        report.baseline_failed = baseline.stdout[-2000:]
        return report
    timeout = 3 * took + 10  # a mutant that hangs is killed by the timeout
    found = mutants(module, target)
    random.Random(f"{module}:0").shuffle(found)  # a budget cut leaves a fair sample
    if sample is not None:
        found = found[:sample]
    lines = Path(module).read_text().splitlines()
    for index, mutation in enumerate(found):
        if time.monotonic() + took > deadline:
            report.not_run = len(found) - index
            break
        result = mutate_and_test([mutation], command, timeout)
        if result.test_outcome is None:
            continue  # no mutation was possible at that occurrence
        if result.test_outcome is not TestOutcome.SURVIVED:
            report.killed += 1
            continue
        line = lines[mutation.start_pos[0] - 1].strip()
        why = EQUIVALENT.get((module, line, mutation.operator_name, mutation.start_pos[1]))
        entry = (mutation, why or result.diff or "")
        (report.equivalent if why else report.survived).append(entry)
        print(f"  survived: {module}:{mutation.start_pos[0]} {mutation.operator_name}", flush=True)
    return report


def _copy_tree(into: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def changed_modules(base: str) -> list[str]:
    """The modules under test whose file, or a test file covering them, differs from ``base``."""
    diff = subprocess.run(
        ["git", "diff", "--name-only", base, "--"], cwd=ROOT, capture_output=True, text=True
    )
    if diff.returncode != 0:
        raise SystemExit(f"error: git diff {base} failed: {diff.stderr.strip()}")
    changed = set(diff.stdout.split())
    return [m for m, t in MODULES.items() if m in changed or changed.intersection(t.tests)]


def _print(report: Report) -> None:
    if report.baseline_failed:
        print(f"{report.module}: its tests fail without any mutation:\n{report.baseline_failed}")
        return
    judged = report.killed + len(report.survived)
    print(
        f"{report.module}: score {report.score:.0%} ({report.killed} of {judged} killed"
        f", {len(report.equivalent)} equivalent, {report.not_run} not run: budget)"
    )
    for mutation, why in report.equivalent:
        print(f"  equivalent {mutation.start_pos[0]} {mutation.operator_name}: {why}")
    for mutation, diff in report.survived:
        print(f"  SURVIVED {mutation.operator_name} in {mutation.definition_name}():")
        print("    " + "\n    ".join(line for line in diff.splitlines()[3:] if line))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the mutants, print the reports; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--module", action="append", choices=sorted(MODULES), help="repeatable")
    which.add_argument("--all", action="store_true", help="every module in MODULES")
    which.add_argument("--changed", metavar="BASE", help="the modules a change since BASE touched")
    which.add_argument("--list", action="store_true", help="list modules, tests and mutant counts")
    parser.add_argument("--budget", type=float, default=600, help="seconds for the whole run")
    parser.add_argument("--sample", type=int, help="at most this many mutants a module")
    parser.add_argument("--fail-on-survivors", action="store_true", help="exit 1 on a survivor")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in a log
    os.chdir(ROOT)
    if args.list:
        for module, target in MODULES.items():
            print(f"{module} ({len(mutants(module, target))} mutants): {' '.join(target.tests)}")
        return 0
    chosen = sorted(MODULES) if args.all else args.module or changed_modules(args.changed)
    if not chosen:
        print("no module under mutation testing changed")
        return 0
    deadline = time.monotonic() + args.budget
    reports = []
    # SIGTERM unwinds as an exception does: the copy of the tree is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="mutation-") as copy:
        _copy_tree(Path(copy))
        os.chdir(copy)
        os.environ["PYTHONPATH"] = copy  # the tests' child processes import the copy too
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        for index, module in enumerate(chosen):
            # Each module gets an equal share of what is left.
            share = (deadline - time.monotonic()) / (len(chosen) - index)
            print(f"{module}: mutating for up to {share:.0f} s", flush=True)
            report = run_module(
                module, MODULES[module], deadline=time.monotonic() + share, sample=args.sample
            )
            reports.append(report)
            _print(report)
        os.chdir(ROOT)
    survivors = sum(len(report.survived) for report in reports)
    failed = any(report.baseline_failed for report in reports)
    killed = sum(report.killed for report in reports)
    print(f"total: {killed} killed, {survivors} survived")
    return 1 if failed or (args.fail_on_survivors and survivors) else 0


if __name__ == "__main__":
    sys.exit(main())
