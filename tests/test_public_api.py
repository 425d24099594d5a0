"""The public API a user can list: ``__all__`` agrees with each package, all of it documented."""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

PACKAGES = [
    "transport",
    "transport.runtime",
    "transport.client",
    "transport.encoding",
    "transport.encoding.protobuf",
    "transport.health",
    "transport.metadata",
    "transport.reflection",
    "transport.security",
]


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        # Classes and functions of this library; constants and typing names are judged
        # by hand.
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__.startswith(module.__name__)
    }


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    assert exported <= set(vars(module)), exported - set(vars(module))
    missing = _public_names(module) - exported
    assert not missing, f"public in {name} but not in __all__: {sorted(missing)}"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_class_and_function_has_a_docstring(name: str) -> None:
    module = importlib.import_module(name)
    undocumented: list[str] = []
    for attribute in module.__all__:
        value = getattr(module, attribute)
        # A class's own docstring (inspect.getdoc would fall back to a base class's).
        if (inspect.isclass(value) or inspect.isfunction(value)) and not value.__doc__:
            undocumented.append(attribute)
        if inspect.isclass(value):
            for member, function in vars(value).items():
                if member.startswith("_") or not (
                    inspect.isfunction(function) or isinstance(function, (classmethod, property))
                ):
                    continue
                if not inspect.getdoc(function):
                    undocumented.append(f"{attribute}.{member}")
    assert not undocumented, f"undocumented in {name}: {undocumented}"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_exception_derives_from_transport_error(name: str) -> None:
    from transport import TransportError

    module = importlib.import_module(name)
    errors = [
        value
        for value in (getattr(module, public) for public in module.__all__)
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and not issubclass(value, Warning)
    ]
    strays = [error.__name__ for error in errors if not issubclass(error, TransportError)]
    assert not strays, f"catch-all `except TransportError` misses {strays}"
