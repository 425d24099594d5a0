"""A mypy plugin that checks ``bind(Declaration, implementation)`` method by method.

Enable it in the project's mypy configuration::

    [tool.mypy]
    plugins = ["transport.mypy_plugin"]

Plain typing cannot say "an object whose ``Get`` takes a ``Key`` because the
declaration's ``Get`` is ``UnaryUnary[Key, Entry]``": that is a mapping from
one class's members to another's, and an implementation may leave methods out
(they answer UNIMPLEMENTED), so a structural ``Protocol`` match would refuse
valid code. The plugin reads each declared handle at the ``bind`` (or
``Binding``) call and refuses an implementation method whose signature cannot
serve it: ``(request)`` or ``(request, context)``, all ``def`` (``Context``,
``Iterator`` streams) or all ``async def`` (``AsyncContext``, ``AsyncIterator``
streams).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from mypy.errorcodes import ARG_TYPE
from mypy.messages import format_type_bare
from mypy.nodes import ARG_POS, Decorator, TypeInfo, Var
from mypy.plugin import FunctionContext, Plugin
from mypy.subtypes import find_member, is_subtype
from mypy.types import (
    AnyType,
    CallableType,
    Instance,
    NoneType,
    ProperType,
    Type,
    TypeOfAny,
    TypeType,
    UnionType,
    get_proper_type,
)

__all__ = ["TransportPlugin", "plugin"]

_BINDERS = frozenset({"transport.server.bind", "transport.server.Binding"})
# Each handle kind: (client_streaming, server_streaming).
_KINDS = {
    "transport.service.UnaryUnary": (False, False),
    "transport.service.UnaryStream": (False, True),
    "transport.service.StreamUnary": (True, False),
    "transport.service.StreamStream": (True, True),
}


class TransportPlugin(Plugin):
    """Checks each implementation method passed to ``bind`` against its declared handle."""

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        """The hook of ``bind()`` and ``Binding()``; no other function is touched."""
        return self._check_binding if fullname in _BINDERS else None

    def _context(self, fullname: str) -> Type:
        """``Context`` or ``AsyncContext`` (``Any`` if mypy has not loaded them)."""
        symbol = self.lookup_fully_qualified(fullname)
        if symbol is None or not isinstance(symbol.node, TypeInfo):
            return AnyType(TypeOfAny.special_form)
        return Instance(symbol.node, [])

    def _check_binding(self, ctx: FunctionContext) -> Type:
        if len(ctx.arg_types) < 2 or not ctx.arg_types[0] or not ctx.arg_types[1]:
            return ctx.default_return_type
        info = _declaration(get_proper_type(ctx.arg_types[0][0]))
        implementation = get_proper_type(ctx.arg_types[1][0])
        if info is None or not isinstance(implementation, Instance):
            return ctx.default_return_type
        contexts = (
            self._context("transport.context.Context"),
            self._context("transport.context.AsyncContext"),
        )
        owner = implementation.type.name
        for name, handle in _handles(info):
            member = find_member(name, implementation, implementation)
            found = get_proper_type(member) if member is not None else None
            # Left out (UNIMPLEMENTED, also as None), untyped, or a subclass that kept the
            # declared handle.
            if found is None or isinstance(found, (AnyType, NoneType)):
                continue
            if isinstance(found, Instance) and found.type.fullname in _KINDS:
                continue
            if not is_subtype(found, _expected(ctx, handle, contexts)):
                ctx.api.fail(
                    f"{owner}.{name} cannot serve {info.name}.{name} ({_shown(handle, ctx)}): "
                    f'it is "{_shown(found, ctx)}"; write '
                    f'"{_fix(name, handle, _is_async(found), ctx)}" (the context may be left out)',
                    ctx.context,
                    code=ARG_TYPE,
                )
        return ctx.default_return_type


def plugin(version: str) -> type[Plugin]:
    """The entry point mypy calls with its version."""
    return TransportPlugin


def _declaration(service: ProperType) -> TypeInfo | None:
    if isinstance(service, CallableType) and service.is_type_obj():
        return service.type_object()
    if isinstance(service, TypeType) and isinstance(service.item, Instance):
        return service.item.type
    return None


def _handles(info: TypeInfo) -> Iterator[tuple[str, Instance]]:
    """Each declared handle of the declaration (inherited ones included) by attribute name."""
    seen: set[str] = set()
    for klass in info.mro:
        for name, symbol in klass.names.items():
            node = symbol.node
            var = node.var if isinstance(node, Decorator) else node
            if name in seen or not isinstance(var, Var) or var.type is None:
                continue
            seen.add(name)
            handle = get_proper_type(var.type)
            if isinstance(handle, Instance) and handle.type.fullname in _KINDS:
                yield name, handle


def _expected(ctx: FunctionContext, handle: Instance, contexts: tuple[Type, Type]) -> Type:
    """Every signature that serves ``handle``: sync or async, with or without the context."""
    client_streaming, server_streaming = _KINDS[handle.type.fullname]
    request, response = handle.args

    def generic(name: str, item: Type) -> Type:
        return ctx.api.named_generic_type(name, [item])

    def function(arguments: list[Type], result: Type) -> CallableType:
        return CallableType(
            arguments,
            [ARG_POS] * len(arguments),
            [None] * len(arguments),
            result,
            ctx.api.named_generic_type("builtins.function", []),
        )

    forms: list[Type] = []
    for asynchronous in (False, True):
        stream = "typing.AsyncIterator" if asynchronous else "typing.Iterator"
        takes = generic(stream, request) if client_streaming else request
        if server_streaming:
            # A sync method may return any iterable (a list, say); grpcio iterates it.
            gives = generic("typing.AsyncIterator" if asynchronous else "typing.Iterable", response)
        else:
            gives = generic("typing.Awaitable", response) if asynchronous else response
        forms.append(function([takes], gives))
        forms.append(function([takes, contexts[asynchronous]], gives))
    return UnionType.make_union(forms)


def _shown(typ: Type, ctx: FunctionContext) -> str:
    return format_type_bare(typ, ctx.api.options)


_ASYNC_RESULTS = frozenset({"typing.Coroutine", "typing.AsyncIterator", "typing.AsyncGenerator"})


def _is_async(found: ProperType) -> bool:
    """Whether the implementation method is an ``async def`` (its fix is then one too)."""
    if not isinstance(found, CallableType):
        return False
    result = get_proper_type(found.ret_type)
    return isinstance(result, Instance) and result.type.fullname in _ASYNC_RESULTS


def _fix(name: str, handle: Instance, asynchronous: bool, ctx: FunctionContext) -> str:
    """The form that serves ``handle``, as the user would write it."""
    client_streaming, server_streaming = _KINDS[handle.type.fullname]
    request, response = (_shown(t, ctx) for t in handle.args)
    stream, context, define = (
        ("AsyncIterator", "AsyncContext", "async def")
        if asynchronous
        else ("Iterator", "Context", "def")
    )
    takes = f"{stream}[{request}]" if client_streaming else request
    gives = f"{stream}[{response}]" if server_streaming else response
    return f"{define} {name}(self, request: {takes}, context: {context}) -> {gives}"
