"""Server reflection (``grpc.reflection.v1`` and ``v1alpha``) built from the declarations.

``service`` serves it; ``wire`` declares its messages; ``client`` is the command
line's side (``python -m transport list|call``, whose ``cli/dynamic.py`` turns the
reflected descriptors into protobuf messages).
"""

from __future__ import annotations

from .service import REFLECTION_SERVICES as REFLECTION_SERVICES
from .service import Reflection as Reflection
from .service import add_reflection as add_reflection

__all__ = ["REFLECTION_SERVICES", "Reflection", "add_reflection"]
