"""Call metadata: its type, what a finished call reports, and the library's reserved keys.

The library negotiates its fast paths and carries error details in metadata
under the keys below; users never see those entries (:func:`user_metadata`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ATTACHMENTS_KEY",
    "BATCHES_KEY",
    "DETAILS_KEY",
    "RESERVED_KEYS",
    "STANDARD_DETAILS_KEY",
    "WIRE_KEY",
    "CallInfo",
    "Metadata",
    "MetadataTuple",
    "as_metadata",
    "check_metadata",
    "user_metadata",
]

#: Call metadata: ``(key, value)`` pairs; keys ending ``-bin`` carry bytes.
Metadata = Sequence[tuple[str, "str | bytes"]]
#: Metadata as the library hands it out: a tuple of pairs.
MetadataTuple = tuple[tuple[str, "str | bytes"], ...]

#: Announces (both ways) that this end reads attachment frames.
ATTACHMENTS_KEY = "transport-attachments"
#: Announces (both ways) the largest batch of stream messages this end reads.
BATCHES_KEY = "transport-batches"
#: Announces the wire (``json`` or ``protobuf``) of a call whose requests stream.
WIRE_KEY = "transport-wire"
#: Trailing metadata that carries an error's JSON details.
DETAILS_KEY = "transport-error-details-bin"
#: gRPC's own trailer for error details (a ``google.rpc.Status``), sent beside ours.
STANDARD_DETAILS_KEY = "grpc-status-details-bin"
#: Every key the library sends on its own account: users never see these entries.
RESERVED_KEYS = frozenset(
    {ATTACHMENTS_KEY, BATCHES_KEY, WIRE_KEY, DETAILS_KEY, STANDARD_DETAILS_KEY}
)


@dataclass(frozen=True)
class CallInfo:
    """What a finished call reported besides its response: metadata both ways."""

    initial_metadata: MetadataTuple
    trailing_metadata: MetadataTuple


def as_metadata(items: Any) -> MetadataTuple:
    """Normalise grpcio metadata (tuples, ``_Metadatum``, ``aio.Metadata``) to pairs."""
    return tuple((key, value) for key, value in (items or ()))


def user_metadata(items: Any) -> MetadataTuple:
    """Metadata as users see it: normalised, without the library's own entries."""
    return tuple((key, value) for key, value in (items or ()) if key not in RESERVED_KEYS)


def check_metadata(metadata: Metadata | None) -> MetadataTuple | None:
    """Validate call metadata before it reaches grpcio, with a clear error."""
    if not metadata:
        return None
    checked = tuple(metadata)
    for key, value in checked:
        if not isinstance(key, str) or not key or key != key.lower():
            raise ValueError(f"metadata key {key!r} must be a non-empty lower-case string")
        if key.startswith("grpc-"):
            raise ValueError(f"metadata key {key!r}: keys beginning 'grpc-' are reserved by gRPC")
        if key.endswith("-bin"):
            if not isinstance(value, bytes):
                raise ValueError(f"metadata key {key!r} ends in -bin, so its value must be bytes")
        elif not isinstance(value, str):
            raise ValueError(f"metadata key {key!r} needs a str value (or a key ending -bin)")
    return checked
