"""A request's fields that its declared message does not have, for ``call --declarations``.

The JSON wire ignores a field a message does not declare (a newer peer's field
is not an error), but a user typing a request means every field: ``call``
refuses an unknown one before sending, as the reflection path's protobuf
conversion does, instead of sending ``{}`` for ``{"skew": "H1"}``. The document
is first normalised as the server's lenient reading would (``.proto`` names,
lowerCamelCase), so a name the server reads is never refused.
"""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

from ..encoding.lenient_json import DuplicateFieldError, Leniency

__all__ = ["unknown_field"]


def unknown_field(document: Any, message_type: type[Any]) -> str:
    """Why ``document`` (parsed JSON) names a field ``message_type`` lacks, or ``""``."""
    try:
        normalised, _ = Leniency(message_type).normalise(document)
    except DuplicateFieldError as exc:
        return str(exc)
    return _walk(normalised, mi.type_info(message_type), "$")


def _walk(value: Any, info: mi.Type, path: str) -> str:
    if isinstance(info, mi.Metadata):
        return _walk(value, info.type, path)
    if isinstance(info, mi.StructType):
        return _struct(value, info, path) if isinstance(value, dict) else ""
    if isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        items = value if isinstance(value, list) else []
        return _first(_walk(item, info.item_type, f"{path}[{i}]") for i, item in enumerate(items))
    if isinstance(info, mi.TupleType) and isinstance(value, list):
        pairs = zip(value, info.item_types, strict=False)
        return _first(_walk(item, kind, f"{path}[{i}]") for i, (item, kind) in enumerate(pairs))
    if isinstance(info, mi.DictType) and isinstance(value, dict):
        return _first(
            _walk(item, info.value_type, f"{path}[{key!r}]") for key, item in value.items()
        )
    if isinstance(info, mi.UnionType) and isinstance(value, dict):
        chosen = _struct_of(value, info)
        return "" if chosen is None else _struct(value, chosen, path)
    return ""  # scalars, arrays and free JSON: msgspec checks them, or they take any key


def _struct(value: dict[str, Any], info: mi.StructType, path: str) -> str:
    if info.array_like:
        return ""
    fields = {field.encode_name: field for field in info.fields}
    for key, item in value.items():
        field = fields.get(key)
        if field is None and key != info.tag_field:
            known = ", ".join(fields) or "none"
            name = info.cls.__name__
            return f"Object contains unknown field `{key}` - at `{path}` ({name}'s fields: {known})"
        if field is not None:
            found = _walk(item, field.type, f"{path}.{key}")
            if found:
                return found
    return ""


def _struct_of(value: dict[str, Any], info: mi.UnionType) -> mi.StructType | None:
    """The message of a union that an object decodes as: by its tag, or the only one."""
    structs = [option for option in info.types if isinstance(option, mi.StructType)]
    for struct in structs:
        if struct.tag_field is not None and value.get(struct.tag_field) == struct.tag:
            return struct
    untagged = [struct for struct in structs if struct.tag_field is None]
    return untagged[0] if len(untagged) == 1 else None


def _first(found: Any) -> str:
    return next((why for why in found if why), "")
