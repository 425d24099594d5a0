"""The JSON codec: one encoder and one decoder per message type, built once.

It implements the codec contract (:class:`transport.encoding.Codec`: ``name``,
``encode`` and ``decode``, as grpc-go's ``encoding.Codec``). Decoding errors
carry msgspec's field path (``Expected `int`, got `str` - at `$.n```) so the
server can answer INVALID_ARGUMENT with a message that names the field.
"""

from __future__ import annotations

import codecs
import sys
import typing
from typing import Any, ClassVar, Generic, TypeVar, cast

import msgspec
import numpy as np

from ..errors import DecodeError, DecodeLimitError
from . import frames as _attachments
from . import lenient_json as _lenient_json
from .ndarray import check_declared_dtype, decode_ndarray, encode_ndarray
from .nonfinite import FloatWords, holds_null

__all__ = [
    "BYTES_PER_CONTAINER",
    "CONTAINER_ALLOWANCE",
    "MAX_JSON_DEPTH",
    "NOT_UTF8",
    "FrozenMessage",
    "JsonCodec",
    "Message",
    "container_allowance",
]

T = TypeVar("T")

#: JSON nested deeper than this many arrays and objects does not decode.
MAX_JSON_DEPTH = 1000
#: A message may hold this many JSON arrays and objects, plus one for every
#: :data:`BYTES_PER_CONTAINER` bytes of it. Each becomes a Python object of up
#: to a few hundred bytes that the garbage collector walks: ``[[],[],...]``
#: would otherwise take 30x its size and seconds of collection.
CONTAINER_ALLOWANCE = 16384
BYTES_PER_CONTAINER = 32
# msgspec recurses once per level and stops at the interpreter's recursion
# check, which by default (a recursion limit of 1000 on CPython 3.11) keeps
# the C stack safe. A program that raises the limit would let a deep document
# overflow the C stack and kill the process: then the depth is measured first.
_SAFE_RECURSION_LIMIT = 1000
# What the depth scan keeps: brackets (braces count as brackets) and quotes.
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_SCAN_CHUNK = 1 << 20


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


def _scan(data: bytes) -> tuple[int, int]:
    """The arrays and objects of ``data`` outside strings, and their deepest nesting.

    Linear and vectorised, a megabyte at a time (the temporaries stay small):
    escaped backslashes and quotes go first, then all but brackets and quotes;
    numpy marks what lies between quotes. Past the first error msgspec would
    report the counts may be off, which only changes which error is reported.
    """
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in data else data
    marks = np.frombuffer(unescaped.translate(_AS_BRACKETS, _NOT_STRUCTURE), np.uint8)
    containers = deepest = depth = 0
    in_string = False
    for start in range(0, marks.size, _SCAN_CHUNK):
        chunk = marks[start : start + _SCAN_CHUNK]
        # Inside a string: an odd count of quotes so far (a running parity; numpy
        # 1.24's bitwise_xor.accumulate on bools is wrong past a few thousand).
        quotes = np.cumsum(chunk == ord('"'), dtype=np.uint32)
        inside = (quotes & 1).astype(bool) ^ in_string
        in_string = bool(inside[-1])
        # "[" is one level in, "]" one level out; nothing counts inside a string.
        steps = (chunk == ord("[")).view(np.int8) - (chunk == ord("]")).view(np.int8)
        steps[inside] = 0
        containers += int(np.count_nonzero(steps == 1))
        levels = np.cumsum(steps, dtype=np.int32)
        deepest = max(deepest, depth + int(levels.max()))
        depth += int(levels[-1])
    return containers, deepest


def _too_deep(data: bytes | memoryview) -> bool:
    """Whether ``data`` nests arrays and objects deeper than :data:`MAX_JSON_DEPTH`."""
    data = bytes(data)
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return False
    return _scan(data)[1] > MAX_JSON_DEPTH


def container_allowance(size: int) -> int:
    """The JSON arrays and objects (protobuf messages, map entries) ``size`` bytes may hold."""
    return CONTAINER_ALLOWANCE + size // BYTES_PER_CONTAINER


def _check_containers(data: bytes | memoryview) -> None:
    """Refuse more arrays and objects than :data:`CONTAINER_ALLOWANCE` allows for ``data``.

    A count of brackets first (about a millisecond for 4 MiB); only when that
    is over, the exact count outside strings.
    """
    data = bytes(data)
    allowed = container_allowance(len(data))
    if data.count(b"[") + data.count(b"{") <= allowed:
        return
    found, deepest = _scan(data)
    if found <= allowed:
        return
    if deepest > MAX_JSON_DEPTH:
        raise DecodeError("JSON is nested too deeply")
    raise DecodeLimitError(
        f"{found} JSON arrays and objects in {len(data)} bytes: at most {allowed} "
        f"({CONTAINER_ALLOWANCE} and one per {BYTES_PER_CONTAINER} bytes)"
    )


def _check_depth(data: bytes | memoryview) -> None:
    """Refuse JSON too deep for msgspec to decode safely under a raised recursion limit."""
    if sys.getrecursionlimit() > _SAFE_RECURSION_LIMIT and _too_deep(data):
        raise DecodeError("JSON is nested too deeply")


#: What a message that does not decode because a string is not UTF-8 says,
#: whichever msgspec release decoded it (some raise UnicodeDecodeError, later
#: ones a DecodeError of their own wording).
NOT_UTF8 = "a string is not UTF-8"
_UTF8_CHUNK = 1 << 16


def _utf8_error(data: bytes | memoryview) -> str | None:
    """Where and why ``data`` is not UTF-8, or ``None`` if it is.

    Linear, and in bounded steps so a large message is never copied whole.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(view), _UTF8_CHUNK):
        try:
            decoder.decode(view[start : start + _UTF8_CHUNK])
        except UnicodeDecodeError as exc:
            return f"{exc.reason} at byte {start + exc.start}"
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return f"{exc.reason} at the end"
    return None


def _malformed(what: str, data: bytes | memoryview, exc: Exception) -> DecodeError:
    """The error for JSON msgspec could not parse: invalid UTF-8 in the project's words."""
    reason = _utf8_error(data)
    if reason is not None:
        return DecodeError(f"{what}: {NOT_UTF8} ({reason})")
    return DecodeError(f"{what}: {exc}")


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

    name: ClassVar[str] = "json"

    __slots__ = (
        "_decoder",
        "_encoder",
        "_float_words",
        "_leniency",
        "_quoted",
        "_underscored",
        "contents",
        "type",
    )

    def __init__(self, type_: type[T]) -> None:
        self.type = type_
        self._encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
        try:
            self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(type_, dec_hook=_dec_hook)
        except TypeError as exc:
            raise TypeError(f"{type_!r} cannot be used as a message type: {exc}") from exc
        # Whether arrays and bytes fields can take the fast paths of _attachments.
        self.contents = _attachments.contents(type_)
        # What else proto3 JSON peers send (other names, numbers as strings...).
        self._leniency = _lenient_json.Leniency(type_)
        # Other names of fields, looked for in each document ("sensor_id" only
        # if it has an underscore at all): the strict decoder would skip them.
        self._underscored = self._leniency.underscored
        self._quoted = self._leniency.quoted
        # Where floats are declared, written "NaN"/"Infinity" when not finite.
        words = FloatWords(type_)
        self._float_words = words if words.declared else None

    def encode(self, message: T) -> bytes:
        """Return the JSON bytes of ``message``.

        A non-finite float is written as proto3 JSON writes it: ``"NaN"``,
        ``"Infinity"`` or ``"-Infinity"`` (see :mod:`transport.encoding.nonfinite`).
        """
        if self.contents.arrays:
            data = _attachments.encode_spliced(message, _enc_hook)
        else:
            data = self._encoder.encode(message)
        # msgspec writes a non-finite float as null: only then is there a float to put in
        # words. No "u" (a memchr), no null: most float-heavy messages stop there.
        words = self._float_words
        if words is not None and b"u" in data and holds_null(data):
            fixed = words.fix(message)
            if fixed is not message:
                return self.encode(fixed)
        return data

    def encode_framed(self, message: T) -> bytes:
        """Return ``message`` as an attachment frame, for a peer that announced it reads them.

        A message with less than :data:`~.frames.FRAME_BYTES` of arrays and
        buffers goes as JSON, which is faster at that size (a frame's reader
        reads JSON too). So does a message with a non-finite float: a frame's
        header is strict JSON, which has no word for it.
        """
        words = self._float_words
        if (
            self.contents.buffers
            and _attachments.carries(message, _attachments.FRAME_BYTES)
            # A frame's header holds a null for each buffer: no telling a NaN by it.
            and (words is None or words.fix(message) is message)
        ):
            return _attachments.encode_framed(message, _enc_hook)
        return self.encode(message)

    def _decode_frame(self, data: bytes | memoryview) -> T:
        try:
            return cast(T, _attachments.decode_framed(data, self.type, _dec_hook))
        except _FAILURES as exc:
            header = memoryview(data)[8 : 8 + int.from_bytes(data[4:8], "little")]
            raise _failure(exc, "malformed attachment frame", header) from None

    def decode_framed(self, data: bytes | memoryview) -> T:
        """Like :meth:`decode`, and read an attachment frame too: for a peer that announced them."""
        if self.contents.buffers and data[:4] == _attachments.MAGIC:
            # Only the frame's JSON header nests; the buffers after it are raw bytes.
            header = memoryview(data)[8 : 8 + int.from_bytes(data[4:8], "little")]
            if len(header) > CONTAINER_ALLOWANCE:
                _check_containers(header)
            _check_depth(header)
            return self._decode_frame(data)
        return self.decode(data)

    def decode(self, data: bytes | memoryview) -> T:
        """Return the message in JSON ``data``; raise :class:`DecodeError` naming the field path.

        What proto3 JSON peers send is read too (``.proto`` field names,
        integers as strings...: see :mod:`transport.encoding.lenient_json`). An
        attachment frame is not JSON: only :meth:`decode_framed` reads one.
        """
        if not isinstance(data, bytes):  # a message of a batch: small, and bytes scan faster
            data = bytes(data)
        if len(data) > MAX_JSON_DEPTH:  # a shorter document cannot nest deeper
            _check_depth(data)
        if len(data) > CONTAINER_ALLOWANCE:  # nor hold more arrays and objects
            _check_containers(data)
        if (
            self._underscored
            and 95 in data  # "_": an int `in` bytes is a memchr, 8x faster than b"_"
            and _lenient_json.mentions(data, self._underscored)
        ) or (self._quoted and _lenient_json.mentions(data, self._quoted)):
            return self._decode_lenient(data, None)
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            return self._decode_lenient(data, exc)
        except _FAILURES as exc:
            if data[:4] == _attachments.MAGIC:
                raise DecodeError("an attachment frame, but frames were not negotiated") from None
            raise _failure(exc, "malformed JSON", data) from None

    def _decode_strict(self, data: bytes | memoryview) -> T:
        """The strict decoder's answer, for a document whose syntax is known to be valid."""
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise DecodeError(str(exc)) from None

    def _decode_lenient(
        self, data: bytes | memoryview, strict_error: msgspec.ValidationError | None
    ) -> T:
        """Decode what a proto3 JSON peer may send: other names, numbers as strings, ...

        The slow path, taken when the strict decoder failed (``strict_error``)
        or the document may name a field otherwise; the limits were checked.
        """
        try:
            document = msgspec.json.decode(data)
        except msgspec.ValidationError:  # beyond what msgspec reads untyped: a huge integer
            if strict_error is not None:
                raise DecodeError(str(strict_error)) from None
            return self._decode_strict(data)
        except _FAILURES as exc:
            raise _failure(exc, "malformed JSON", data) from None
        try:
            normalised, changed = self._leniency.normalise(document)
            if strict_error is not None and not changed:
                raise DecodeError(str(strict_error)) from None
            return cast(T, _lenient_json.convert(normalised, self.type, _dec_hook))
        except (msgspec.ValidationError, _lenient_json.DuplicateFieldError) as exc:
            raise DecodeError(str(exc)) from None
        except RecursionError:
            raise DecodeError("JSON is nested too deeply") from None


# What msgspec raises for bytes that are not the message; _failure words each.
_FAILURES = (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _failure(exc: Exception, malformed: str, document: bytes | memoryview) -> DecodeError:
    """The one wording of a decode failure: the field path, what is malformed, or the depth."""
    if isinstance(exc, msgspec.ValidationError):
        return DecodeError(str(exc))
    if isinstance(exc, RecursionError):
        return DecodeError("JSON is nested too deeply")
    return _malformed(malformed, document, exc)
