"""Primitive nodes with ComfyUI's names: one widget whose value is the output (for sharing a value)."""

from __future__ import annotations

import sys

from sigmagraph.engine import Boolean, Float, Int, String, node

from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

CATEGORY = "utils/primitive"


@node(returns=["INT"], category=CATEGORY, display_name="Int")
def PrimitiveInt(value: int = Int(0, min=-sys.maxsize, max=sys.maxsize, control_after_generate=True)):
    """An integer."""
    return value


@node(returns=["FLOAT"], category=CATEGORY, display_name="Float")
def PrimitiveFloat(value: float = Float(0.0, min=-sys.maxsize, max=sys.maxsize, step=0.1)):
    """A number."""
    return value


@node(returns=["BOOLEAN"], category=CATEGORY, display_name="Boolean")
def PrimitiveBoolean(value: bool = Boolean(False)):
    """A boolean."""
    return value


@node(returns=["STRING"], category=CATEGORY, display_name="String")
def PrimitiveString(value: str = String("")):
    """A one-line string."""
    return value


@node(returns=["STRING"], category=CATEGORY, display_name="String (Multiline)")
def PrimitiveStringMultiline(value: str = String("", multiline=True)):
    """A multi-line string."""
    return value
