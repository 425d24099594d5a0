"""Test helpers: protoc-generated classes from exported ``.proto`` text, and messages to send.

:func:`generated` runs ``protoc --python_out`` (grpcio-tools', see
:mod:`tests.tools`) on a ``.proto`` text and imports the module;
:func:`messages` is a hypothesis strategy for any numbered message type,
built from its protobuf schema.
"""

from __future__ import annotations

import atexit
import datetime
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from hypothesis import strategies as st

from tests.tools import protoc
from transport.encoding.protobuf.schema import WRAPPERS, FieldSchema, TypeSchema, schema_of
from transport.examples.jina.protocol import DenseNdArrayProto

_GENERATED: dict[str, tuple[str, ModuleType]] = {}
_COMPILED_DIR = Path(tempfile.mkdtemp(prefix="transport-protoc-"))
atexit.register(shutil.rmtree, _COMPILED_DIR, ignore_errors=True)


def generated(name: str, text: str) -> ModuleType:
    """Compile ``text`` as ``{name}.proto`` with protoc and import ``{name}_pb2``, once."""
    if name in _GENERATED:
        previous, module = _GENERATED[name]
        assert previous == text, f"{name}.proto compiled twice with different text"
        return module
    (_COMPILED_DIR / f"{name}.proto").write_text(text)
    protoc(
        f"-I{_COMPILED_DIR}", f"--python_out={_COMPILED_DIR}", f"{name}.proto", cwd=_COMPILED_DIR
    )
    spec = importlib.util.spec_from_file_location(f"{name}_pb2", _COMPILED_DIR / f"{name}_pb2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    _GENERATED[name] = (text, module)
    return module


def descriptor_set(proto: Path) -> Any:
    """The ``FileDescriptorProto`` of a ``.proto`` file, as protoc reads it."""
    from google.protobuf import descriptor_pb2

    out = _COMPILED_DIR / f"{proto.stem}.pb"
    protoc(f"-I{proto.parent}", f"--descriptor_set_out={out}", proto.name, cwd=proto.parent)
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return next(f for f in files.file if f.name == proto.name)


_INTS = {
    "int32": (-(2**31), 2**31 - 1),
    "sint32": (-(2**31), 2**31 - 1),
    "sfixed32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "sint64": (-(2**63), 2**63 - 1),
    "sfixed64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "fixed32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "fixed64": (0, 2**64 - 1),
}
_UTC = datetime.timezone.utc
# JSON-like values; numbers are doubles on the protobuf wire, so floats only.
_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    **{kind: st.integers(low, high) for kind, (low, high) in _INTS.items()},
    "bool": st.booleans(),
    "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "double": st.floats(allow_nan=False, allow_infinity=False),
    "string": st.text(max_size=8),
    "bytes": st.binary(max_size=8),
    "google.protobuf.Timestamp": st.datetimes(
        datetime.datetime(1900, 1, 1), datetime.datetime(2200, 1, 1), timezones=st.just(_UTC)
    ),
    "google.protobuf.Duration": st.timedeltas(
        datetime.timedelta(days=-9999), datetime.timedelta(days=9999)
    ),
    "google.protobuf.Struct": st.dictionaries(st.text(max_size=5), _JSON, max_size=3),
    "google.protobuf.ListValue": st.lists(_JSON, max_size=3),
    "google.protobuf.Value": _JSON,
    "ndarray": st.sampled_from(["float32", "int64", "uint8", "complex64"]).flatmap(
        lambda dtype: st.lists(st.integers(0, 3), max_size=3).map(
            lambda shape: np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
        )
    ),
}
#: Messages whose fields must agree with one another, drawn whole.
OVERRIDES: dict[type[Any], st.SearchStrategy[Any]] = {
    # A dense array's buffer must hold dtype x shape.
    DenseNdArrayProto: st.lists(st.floats(width=32, allow_nan=False), max_size=4).map(
        lambda values: DenseNdArrayProto(
            buffer=np.array(values, np.float32).tobytes(), shape=[len(values)], dtype="float32"
        )
    ),
}


def _value(value: TypeSchema, depth: int) -> st.SearchStrategy[Any]:
    if value.kind in _SCALARS:
        return _SCALARS[value.kind]
    if value.kind == "enum":
        assert value.enum is not None
        return st.sampled_from(list(value.enum.__numbers__.values()))
    if value.kind.startswith("google.protobuf.") and value.kind.endswith("Value"):
        return st.none() | _SCALARS[WRAPPERS[value.kind]]
    assert value.message is not None
    return messages(value.message.type, depth + 1)


def _field(field: FieldSchema, depth: int) -> st.SearchStrategy[Any]:
    is_message = field.value.message is not None or field.value.kind == "ndarray"
    if field.label == "repeated":
        if is_message and depth >= 2:
            return st.just(()) if field.as_tuple else st.just([])
        items = st.lists(_value(field.value, depth), max_size=3)
        return items.map(tuple) if field.as_tuple else items
    if field.label == "map":
        assert field.key is not None
        return st.dictionaries(_value(field.key, depth), _value(field.value, depth), max_size=3)
    if is_message and depth >= 2:
        return st.none()
    value = _value(field.value, depth)
    return st.none() | value if field.label == "optional" or is_message else value


def messages(message_type: type[Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Messages of ``message_type``: one member of each oneof set, nesting at most 3 deep."""
    if message_type in OVERRIDES:
        return OVERRIDES[message_type]
    schema = schema_of(message_type)

    @st.composite
    def draw_message(draw: st.DrawFn) -> Any:
        groups: dict[str, list[FieldSchema]] = {}
        for field in schema.fields:
            if field.oneof is not None:
                groups.setdefault(field.oneof, []).append(field)
        chosen = {draw(st.sampled_from(members)).attr for members in groups.values()}
        values: dict[str, Any] = {}
        for field in schema.fields:
            if field.oneof is None:
                values[field.attr] = draw(_field(field, depth))
            elif field.attr in chosen:
                values[field.attr] = draw(_value(field.value, min(depth, 1)))
        return message_type(**values)

    return draw_message()
