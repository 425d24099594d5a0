"""Keep grpc core's own log lines out of the command line's and the test fixtures' output.

grpc core reads ``GRPC_VERBOSITY`` once, when ``grpc`` is first imported, and
by default prints INFO lines such as ``Got goaway`` when a peer closes a
connection. ``python -m transport ...`` imports this package (and so grpc)
before its ``__main__`` runs, so the default is set here, first, and only for
that command line and for pytest, whose plugin (:mod:`transport.pytest_plugin`,
the fixtures) imports this package as the session starts: a program that
imports ``transport`` keeps grpc's defaults. Set ``GRPC_VERBOSITY`` (``INFO``,
``DEBUG``) to see the lines again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Container

__all__ = ["QUIET_VERBOSITY", "running_pytest", "running_the_command_line"]

#: grpc core's verbosity for the command line when the user set none: errors only.
QUIET_VERBOSITY = "ERROR"

# The interpreter's options whose value is the next argument.
_TAKES_A_VALUE = frozenset({"-W", "-X", "--check-hash-based-pycs"})


def running_the_command_line(argv: list[str]) -> bool:
    """Whether ``argv`` (the interpreter's own, ``sys.orig_argv``) runs ``-m transport[...]``.

    Or the ``transport`` console script, which runs the same ``main``.
    """
    options = iter(argv[1:])
    for option in options:
        if option in _TAKES_A_VALUE:
            next(options, None)
        elif option.startswith("-m"):  # "-m transport" or "-mtransport"
            module = option[2:] or next(options, "")
            return module == "transport" or module.startswith("transport.")
        elif option.startswith("-c") or option == "-":
            return False  # a command or stdin: options end there
        elif not option.startswith("-"):  # a script ends them too
            return os.path.basename(option) in {"transport", "transport.exe"}
    return False


def running_pytest(modules: Container[str]) -> bool:
    """Whether pytest runs (``sys.modules``): its plugin loads this package with the fixtures."""
    return "_pytest.config" in modules


if (
    running_the_command_line(getattr(sys, "orig_argv", [])) or running_pytest(sys.modules)
) and "grpc" not in sys.modules:
    os.environ.setdefault("GRPC_VERBOSITY", QUIET_VERBOSITY)
