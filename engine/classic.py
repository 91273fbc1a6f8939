"""The ComfyUI-classic adapter: a class with INPUT_TYPES / RETURN_TYPES / FUNCTION becomes a NodeSpec.

Simple existing ComfyUI custom nodes load unchanged: option dicts map onto our input specs,
`IS_CHANGED` becomes the fingerprint (NaN, as in ComfyUI, means "always run"), `OUTPUT_IS_LIST`
and `INPUT_IS_LIST` keep ComfyUI's list semantics, and a fresh instance runs each call.
"""

from __future__ import annotations

import math
from typing import Any

from .spec import (ALWAYS_RUN, BooleanInput, ComboInput, FloatInput, Hidden, InputSpec, IntInput, NodeSpec,
                   OutputSpec, SocketInput, StringInput)

_WIDGET_OPTIONS = {
    "INT": ("default", "min", "max", "step", "control_after_generate", "tooltip", "forceInput"),
    "FLOAT": ("default", "min", "max", "step", "round", "tooltip", "forceInput"),
    "STRING": ("default", "multiline", "dynamicPrompts", "tooltip", "forceInput"),
    "BOOLEAN": ("default", "label_on", "label_off", "tooltip", "forceInput"),
}
_SNAKE = {"forceInput": "force_input", "dynamicPrompts": "dynamic_prompts"}
_CLASSES = {"INT": IntInput, "FLOAT": FloatInput, "STRING": StringInput, "BOOLEAN": BooleanInput}


def _input(name: str, entry: Any, optional: bool) -> InputSpec:
    if not isinstance(entry, (tuple, list)) or not entry:
        raise ValueError(f"input {name!r}: expected (TYPE, options), got {entry!r}")
    kind, opts = entry[0], (entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {})
    if isinstance(kind, (list, tuple)) or kind == "COMBO":
        choices = tuple(str(c) for c in (kind if kind != "COMBO" else opts.get("options", ())))
        return ComboInput(name=name, optional=optional, choices=choices, default=opts.get("default"),
                          tooltip=opts.get("tooltip"), image_upload=opts.get("image_upload"))
    if kind in _CLASSES:
        fields = {_SNAKE.get(k, k): opts[k] for k in _WIDGET_OPTIONS[kind] if k in opts}
        if kind == "INT":
            fields.setdefault("default", max(int(opts.get("min", 0)), 0))
        return _CLASSES[kind](name=name, optional=optional, **fields)
    return SocketInput(name=name, optional=optional, type=str(kind), tooltip=opts.get("tooltip"),
                       lazy=opts.get("lazy"))


def _fingerprint(cls: type) -> Any:
    is_changed = getattr(cls, "IS_CHANGED", None)
    if is_changed is None:
        return None

    def fingerprint(**inputs: Any) -> Any:
        value = is_changed(**inputs) if isinstance(cls.__dict__.get("IS_CHANGED"), (classmethod, staticmethod)) \
            else is_changed(cls(), **inputs)
        return ALWAYS_RUN if isinstance(value, float) and math.isnan(value) else value

    return fingerprint


def spec_from_classic(name: str, cls: type, display_name: str | None = None, module: str = "custom") -> NodeSpec:
    """Converts a ComfyUI-classic node class into a NodeSpec (raises ValueError on a bad declaration)."""
    declared = cls.INPUT_TYPES()
    inputs = [_input(n, e, False) for n, e in (declared.get("required") or {}).items()]
    inputs += [_input(n, e, True) for n, e in (declared.get("optional") or {}).items()]
    hidden = {}
    for n, kind in (declared.get("hidden") or {}).items():
        try:
            hidden[n] = Hidden(kind)
        except ValueError:
            raise ValueError(f"hidden input {n!r}: {kind!r} is not supported (PROMPT, UNIQUE_ID, "
                             f"EXTRA_PNGINFO)") from None
    return_types = tuple(getattr(cls, "RETURN_TYPES", ()))
    names = tuple(getattr(cls, "RETURN_NAMES", None) or [str(t) for t in return_types])
    is_list = tuple(getattr(cls, "OUTPUT_IS_LIST", None) or [False] * len(return_types))
    tooltips = tuple(getattr(cls, "OUTPUT_TOOLTIPS", None) or [None] * len(return_types))
    method = getattr(cls, "FUNCTION")

    def run(**kwargs: Any) -> Any:
        return getattr(cls(), method)(**kwargs)

    return NodeSpec(
        name=name,
        display_name=display_name or name,
        category=getattr(cls, "CATEGORY", "custom"),
        description=getattr(cls, "DESCRIPTION", "") or "",
        inputs=tuple(inputs),
        hidden=hidden,
        outputs=tuple(OutputSpec(type=str(t), name=str(n), is_list=bool(lst), tooltip=tip)
                      for t, n, lst, tip in zip(return_types, names, is_list, tooltips)),
        output_node=bool(getattr(cls, "OUTPUT_NODE", False)),
        input_is_list=bool(getattr(cls, "INPUT_IS_LIST", False)),
        not_idempotent=bool(getattr(cls, "NOT_IDEMPOTENT", False)),
        function=run,
        fingerprint=_fingerprint(cls),
        python_module=module,
        deprecated=bool(getattr(cls, "DEPRECATED", False)),
        experimental=bool(getattr(cls, "EXPERIMENTAL", False)),
    )
