"""Which wire a call speaks, JSON or protobuf, and the codec of each side for it.

A call's wire is the ``transport-wire`` entry of its request metadata if the
client sent one, else the first byte of its first message (``{`` and the NUL
that leads an attachment frame are JSON; a proto3 message can start with
neither, and an empty one is 0 bytes), else the server's default (a server that
writes before any request arrives, or an empty request stream). Answers go
back in the call's wire, and a message in the other wire within the same call
is INVALID_ARGUMENT. Attachment frames belong to the JSON wire only.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import DecodeError, RpcError
from ..metadata import WIRE_KEY
from ..options import COMPRESSIONS
from ..service import Method
from ..status import StatusCode
from . import frames as _attachments

__all__ = [
    "JSON",
    "KEY",
    "PROTOBUF",
    "WIRES",
    "CallWire",
    "add_arguments",
    "announcement",
    "check",
    "decode_reply",
]

KEY = WIRE_KEY
JSON = "json"
PROTOBUF = "protobuf"
WIRES = (JSON, PROTOBUF)
_JSON_LEADS = (0x7B, 0x00)  # "{" and the attachment frame's NUL


def check(wire: str) -> str:
    """``wire`` if it names a wire; a clear ``ValueError`` otherwise."""
    if wire not in WIRES:
        raise ValueError(f"wire must be 'json' or 'protobuf', got {wire!r}")
    return wire


def announcement(wire: str) -> tuple[str, str]:
    """The request metadata entry that announces ``wire``."""
    return (KEY, wire)


def of_message(data: bytes | memoryview) -> str:
    """The wire a message is in, from its first byte."""
    return JSON if data and data[0] in _JSON_LEADS else PROTOBUF


def protobuf_codecs(method: Method[Any, Any]) -> Any:
    """The method's protobuf codecs; INVALID_ARGUMENT when its messages are not numbered."""
    codecs = method.protobuf_codecs()
    if codecs is None:
        raise RpcError(
            StatusCode.INVALID_ARGUMENT,
            f"{method.path} speaks JSON only (its messages have no protobuf field numbers): "
            "send a JSON message, which starts with '{'",
        )
    return codecs


class CallWire:
    """The wire of one call on the server, settled by the announcement, first message or default."""

    __slots__ = ("_announced", "_default", "_frames", "_method", "wire")

    def __init__(
        self, method: Method[Any, Any], metadata: Any, default: str, negotiates: bool
    ) -> None:
        self._method = method
        self._default = default
        self._frames = False
        self.wire: str | None = None
        for key, value in metadata or ():
            if key == KEY:
                if value not in WIRES:
                    raise RpcError(
                        StatusCode.INVALID_ARGUMENT,
                        f"{KEY} must be 'json' or 'protobuf', got {value!r}",
                    )
                self.wire = value
            elif negotiates and key == _attachments.KEY and value == "1":
                self._frames = True
        self._announced = self.wire is not None

    @property
    def frames(self) -> bool:
        """Whether to answer in attachment frames: JSON, and the client announced them."""
        return self._frames and self.wire != PROTOBUF

    def decode(self, data: bytes | memoryview) -> Any:
        """Decode one request, settling the call's wire on the first one."""
        wire = self.wire if self._announced else of_message(data)
        if wire == PROTOBUF and not self._announced and self._method.protobuf_codecs() is None:
            return self._json_only(data)
        if self.wire is None:
            self.wire = wire
        elif wire != self.wire:
            raise RpcError(
                StatusCode.INVALID_ARGUMENT,
                f"a {wire} message in a call that speaks {self.wire}: one call keeps one wire",
            )
        if wire == JSON:
            codec = self._method.request_codec
            return codec.decode_framed(data) if self._frames else codec.decode(data)
        return protobuf_codecs(self._method)[0].decode(data)

    def _json_only(self, data: bytes | memoryview) -> Any:
        """A method without protobuf numbers reads everything as JSON, and says so if it fails."""
        if self.wire is None:
            self.wire = JSON
        try:
            return self._method.request_codec.decode(data)
        except DecodeError as exc:
            raise type(exc)(
                f"{exc} ({self._method.path} speaks JSON only: its messages have no protobuf "
                "field numbers)"
            ) from None

    def encode(self, reply: Any) -> bytes:
        """Encode one response in the call's wire (the default if no request has come)."""
        if self.wire is None:
            numbered = self._method.protobuf_codecs() is not None
            self.wire = self._default if numbered else JSON
        if self.wire == JSON:
            codec = self._method.response_codec
            return codec.encode_framed(reply) if self._frames else codec.encode(reply)
        return protobuf_codecs(self._method)[1].encode(reply)  # type: ignore[no-any-return]


def decode_reply(method: Method[Any, Any], data: bytes | memoryview, frames: bool) -> Any:
    """Decode a response by its first byte, as the server decodes requests.

    A method without protobuf numbers reads every response as JSON.
    """
    codecs = method.protobuf_codecs() if of_message(data) == PROTOBUF else None
    if codecs is not None:
        return codecs[1].decode(data)
    codec = method.response_codec
    return codec.decode_framed(data) if frames else codec.decode(data)


def add_arguments(command: argparse.ArgumentParser) -> None:
    """A serve command's ``--wire`` (the default of calls that do not say) and ``--compression``."""
    command.add_argument(
        "--wire",
        choices=WIRES,
        default=JSON,
        help="the wire of calls that have not said theirs (server-first streams); each call "
        "is answered in the wire it was spoken in (default: json)",
    )
    command.add_argument(
        "--compression",
        choices=sorted(COMPRESSIONS),
        default=None,
        help="compress what the server sends (default: none)",
    )
