"""The ``.proto`` text and the descriptors of declared services.

:func:`proto_file` writes the ``.proto`` of a service (``python -m transport
proto MODULE:Service``), for protoc-generated peers; :func:`file_descriptor`
builds the ``FileDescriptorProto`` that server reflection serves. Both read the
declarations (:mod:`transport.service`) and the protobuf schema of their
messages (:mod:`transport.encoding.protobuf`): this package sits above both.
"""

from __future__ import annotations

from .descriptor import file_descriptor as file_descriptor
from .descriptor import file_descriptors as file_descriptors
from .export import proto_file as proto_file

__all__ = ["file_descriptor", "file_descriptors", "proto_file"]
