"""The code blocks of the README and the docs pages, and how tests run them."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import types
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio

from transport.testing import AsyncTestServer, Mountable, ServeAsync, serve_async

ROOT_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
# A block that starts with "# name.py" is a file the reader saves and runs.
FILE_NAME = re.compile(r"\A# (\w+\.py)\n")


def python_blocks(markdown: str) -> list[str]:
    """The python blocks of a page, in order (indented ones included)."""
    return ROOT_BLOCK.findall(markdown)


def file_blocks(markdown: str) -> dict[str, str]:
    """The blocks that are files, by file name."""
    files: dict[str, str] = {}
    for block in python_blocks(markdown):
        named = FILE_NAME.match(block)
        if named:
            files[named.group(1)] = block
    return files


@asynccontextmanager
async def _serving_async() -> AsyncIterator[ServeAsync]:
    """What the ``transport_serve_async`` fixture gives a test (servers stop at its end)."""
    async with AsyncExitStack() as stack:

        async def start(*bindings: Mountable, **options: Any) -> AsyncTestServer:
            return await stack.enter_async_context(serve_async(*bindings, **options))

        yield start


async def _run_async_test(test: Callable[..., Any], fixtures: dict[str, Any]) -> None:
    """Run an ``async def test_*`` as anyio's pytest plugin would, with its async fixture."""
    async with AsyncExitStack() as stack:
        arguments = {}
        for parameter in inspect.signature(test).parameters:
            if parameter == "transport_serve_async":
                arguments[parameter] = await stack.enter_async_context(_serving_async())
            else:
                arguments[parameter] = fixtures[parameter]
        await test(**arguments)


def run_blocks(code: str, name: str, fixtures: dict[str, Any]) -> None:
    """Run ``code`` as a fresh module, then each ``test_*`` function it defines.

    An ``async def test_*`` runs on asyncio and may take ``transport_serve_async``.
    """
    module = types.ModuleType(name)
    # Registered, as an imported module is, so that a quoted forward reference
    # (a message that holds itself) resolves in the module's globals.
    sys.modules[name] = module
    try:
        exec(compile(code, name, "exec", dont_inherit=True), module.__dict__)
        _run_tests(module.__dict__, fixtures)
    finally:
        del sys.modules[name]


def _run_tests(namespace: dict[str, Any], fixtures: dict[str, Any]) -> None:
    """Call each ``test_*`` function of ``namespace`` with the fixtures it names."""
    for key, value in list(namespace.items()):
        if not (key.startswith("test_") and inspect.isfunction(value)):
            continue
        if inspect.iscoroutinefunction(value):
            anyio.run(_run_async_test, value, fixtures, backend="asyncio")
        else:
            value(**{p: fixtures[p] for p in inspect.signature(value).parameters})


def save_files(markdown: str, directory: Path) -> None:
    """Save a page's file blocks in ``directory``, as a reader would."""
    for name, code in file_blocks(markdown).items():
        (directory / name).write_text(code)


@contextmanager
def running_program(directory: Path, *arguments: str) -> Iterator[str]:
    """Run ``python ARGUMENTS`` and yield the 127.0.0.1 address it says it listens on.

    A quickstart server prints ``listening on port N``; ``python -m transport run``
    prints ``listening on HOST:PORT``.
    """
    process = subprocess.Popen(
        [sys.executable, *arguments],
        cwd=directory,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server prints, or exits
        found = re.fullmatch(r"listening on (?:port |127\.0\.0\.1:)(\d+)\n", line)
        assert found, f"{arguments} printed {line!r}"
        yield f"127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
