"""The JSON codec: one encoder and one decoder per message type, built once.

The contract is three members, as in grpc-go's ``encoding.Codec``: ``name``,
``encode`` and ``decode``. Decoding errors carry msgspec's field path
(``Expected `int`, got `str` - at `$.n```) so the server can answer
INVALID_ARGUMENT with a message that names the field.
"""

from __future__ import annotations

import sys
import typing
from typing import Any, Generic, TypeVar, cast

import msgspec
import numpy as np

from . import _attachments
from .ndarray import check_declared_dtype, decode_ndarray, encode_ndarray

__all__ = ["MAX_JSON_DEPTH", "DecodeError", "FrozenMessage", "JsonCodec", "Message"]

T = TypeVar("T")

#: JSON nested deeper than this many arrays and objects does not decode.
MAX_JSON_DEPTH = 1000
# msgspec recurses once per level and stops at the interpreter's recursion
# check, which by default (a recursion limit of 1000 on CPython 3.11) keeps
# the C stack safe. A program that raises the limit would let a deep document
# overflow the C stack and kill the process: then the depth is measured first.
_SAFE_RECURSION_LIMIT = 1000
# What the depth scan keeps: brackets (braces count as brackets) and quotes.
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')


class Message(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
    """Base for messages that follow the proto3 JSON mapping.

    Field names travel in lowerCamelCase (``source_path`` is ``"sourcePath"``),
    fields equal to their default are omitted, unknown fields are ignored. To
    keep names as declared, subclass with ``rename=None`` or use a plain
    ``msgspec.Struct``. Messages are mutable, so a document can be built in
    steps; see :class:`FrozenMessage` for immutable, hashable ones.
    """


class FrozenMessage(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """Base for immutable, hashable messages with the same mapping as :class:`Message`.

    Subclass with ``frozen=True`` repeated (``class Point(FrozenMessage,
    frozen=True)``): type checkers take a subclass without it to be mutable.
    """


class DecodeError(ValueError):
    """Raised when bytes are not valid JSON or do not match the declared type."""


def _too_deep(data: bytes | memoryview) -> bool:
    """Whether ``data`` nests arrays and objects deeper than :data:`MAX_JSON_DEPTH`.

    Linear and vectorised: escaped backslashes and quotes go first, then all
    but brackets and quotes; numpy marks what lies between quotes and adds up
    the depth of the brackets outside them. Past the first error msgspec would
    report the count may be off, which only changes which error is reported.
    """
    data = bytes(data)
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = np.frombuffer(unescaped.translate(_AS_BRACKETS, _NOT_STRUCTURE), np.uint8)
    quote = marks == ord('"')
    in_string = (np.cumsum(quote, dtype=np.int32) & 1).astype(bool)
    # "[" is 91 and "]" is 93: one level in, one level out.
    steps = np.where(quote | in_string, 0, 92 - marks.astype(np.int32))
    return bool(np.cumsum(steps).max(initial=0) > MAX_JSON_DEPTH)


def _check_depth(data: bytes | memoryview) -> None:
    """Refuse JSON too deep for msgspec to decode safely under a raised recursion limit."""
    if sys.getrecursionlimit() > _SAFE_RECURSION_LIMIT and _too_deep(data):
        raise DecodeError("JSON is nested too deeply")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return encode_ndarray(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise NotImplementedError(f"cannot encode objects of type {type(obj).__name__}")


def _dec_hook(type_: type[Any], obj: Any) -> Any:
    if type_ is np.ndarray:
        return decode_ndarray(obj)
    if typing.get_origin(type_) is np.ndarray:  # numpy.typing.NDArray[...]
        return check_declared_dtype(decode_ndarray(obj), type_)
    raise NotImplementedError(f"cannot decode into type {type_!r}")


class JsonCodec(Generic[T]):
    """Encode and decode one message type as JSON (the registered codec ``json``)."""

    name = "json"

    __slots__ = ("_decoder", "_encoder", "contents", "type")

    def __init__(self, type_: type[T]) -> None:
        self.type = type_
        self._encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
        try:
            self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(type_, dec_hook=_dec_hook)
        except TypeError as exc:
            raise TypeError(f"{type_!r} cannot be used as a message type: {exc}") from exc
        # Whether arrays and bytes fields can take the fast paths of _attachments.
        self.contents = _attachments.contents(type_)

    def encode(self, message: T) -> bytes:
        """Return the JSON bytes of ``message``."""
        if self.contents.arrays:
            return _attachments.encode_spliced(message, _enc_hook)
        return self._encoder.encode(message)

    def encode_framed(self, message: T) -> bytes:
        """Return ``message`` as an attachment frame, for a peer that announced it reads them."""
        if self.contents.buffers:
            return _attachments.encode_framed(message, _enc_hook)
        return self.encode(message)

    def _decode_frame(self, data: bytes | memoryview) -> T:
        try:
            return cast(T, _attachments.decode_framed(data, self.type, _dec_hook))
        except msgspec.ValidationError as exc:
            raise DecodeError(str(exc)) from None
        except msgspec.DecodeError as exc:
            raise DecodeError(f"malformed attachment frame: {exc}") from None
        except RecursionError:
            raise DecodeError("JSON is nested too deeply") from None
        except UnicodeDecodeError as exc:  # msgspec lets these through as they are
            raise DecodeError(
                f"malformed attachment frame: a string is not UTF-8 ({exc.reason})"
            ) from None

    def decode(self, data: bytes | memoryview) -> T:
        """Return the message in ``data``; raise :class:`DecodeError` naming the field path."""
        if self.contents.buffers and data[:4] == _attachments.MAGIC:
            # Only the frame's JSON header nests; the buffers after it are raw bytes.
            _check_depth(memoryview(data)[8 : 8 + int.from_bytes(data[4:8], "little")])
            return self._decode_frame(data)
        if len(data) > MAX_JSON_DEPTH:  # a shorter document cannot nest deeper
            _check_depth(data)
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise DecodeError(str(exc)) from None
        except msgspec.DecodeError as exc:
            raise DecodeError(f"malformed JSON: {exc}") from None
        except RecursionError:
            raise DecodeError("JSON is nested too deeply") from None
        except UnicodeDecodeError as exc:  # msgspec lets these through as they are
            raise DecodeError(f"malformed JSON: a string is not UTF-8 ({exc.reason})") from None
