"""Logic nodes with ComfyUI's names and inputs: Switch, Math Expression and Preview Any.

ComfyUI's V3 shapes, as API-format workflows carry them: ComfySwitchNode's two branches are lazy
"*" sockets (only the chosen branch needs to run); ComfyMathExpression's grown inputs are the
sockets "values.a" ... "values.z", of which "values.a" is required.
"""

from __future__ import annotations

import json
import math
import string
from typing import Any

from sigmagraph.engine import Boolean, NodeOutput, Socket, String, node
from sigmagraph.engine.registry import ANY_TYPE

from ..expression import ExpressionError, evaluate
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

NUMBER = "FLOAT,INT,BOOLEAN"
VALUE_NAMES = list(string.ascii_lowercase)  # the grown inputs of ComfyMathExpression, a to z


def _chosen_branch(switch: bool = False, **_: Any) -> list[str]:
    """The one lazy input the switch needs (ComfyUI's check_lazy_status)."""
    return ["on_true" if switch else "on_false"]


@node(returns=[(ANY_TYPE, "output")], category="logic", display_name="Switch", lazy_status=_chosen_branch)
def ComfySwitchNode(switch: bool = Boolean(False), on_false=Socket(ANY_TYPE, lazy=True),
                    on_true=Socket(ANY_TYPE, lazy=True)):
    """Passes on_true on when the switch is on, on_false otherwise (only the chosen branch is needed)."""
    return on_true if switch else on_false


@node(returns=[("FLOAT", "FLOAT"), ("INT", "INT"), ("BOOLEAN", "BOOL")], category="logic",
      display_name="Math Expression",
      inputs=[Socket(NUMBER, name=f"values.{letter}", optional=letter != "a") for letter in VALUE_NAMES])
def ComfyMathExpression(expression: str = String("a + b", multiline=True), **values: Any):
    """Evaluates a formula over the values a, b, c, ... (and their list `values`): float, int and bool of it.

    Arithmetic, comparisons, bitwise and boolean operators, and sum, min, max, abs, round, pow,
    sqrt, ceil, floor, log, log2, log10, sin, cos, tan, int, float. The int output truncates.
    """
    if not expression.strip():
        raise ExpressionError("Expression cannot be empty.")
    named = {name.split(".", 1)[1]: value for name, value in sorted(values.items())}
    result = evaluate(expression, {**named, "values": list(named.values())})
    if not isinstance(result, (int, float)):
        raise ExpressionError(f"Math Expression {expression!r} must evaluate to a number, "
                              f"got {type(result).__name__}: {result!r}")
    if not math.isfinite(result):
        raise ExpressionError(f"Math Expression {expression!r} produced a non-finite result: {result}")
    return float(result), int(result), bool(result)


def preview_text(source: Any) -> str:
    """How Preview Any shows a value: strings as they are, numbers by str, the rest as JSON if it can."""
    if source is None:
        return "None"
    if isinstance(source, str):
        return source
    if isinstance(source, (int, float, bool)):
        return str(source)
    try:
        return json.dumps(source)
    except (TypeError, ValueError):
        return str(source)


@node(returns=["STRING"], category="utils", display_name="Preview as Text", output_node=True)
def PreviewAny(source=Socket(ANY_TYPE)):
    """Shows any value as text on the node, and passes the text on."""
    text = preview_text(source)
    return NodeOutput((text,), ui={"text": [text]})
