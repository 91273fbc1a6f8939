"""The ComfyUI-classic adapter: a class with INPUT_TYPES / RETURN_TYPES / FUNCTION becomes a NodeSpec.

Existing ComfyUI custom nodes load unchanged, and as leniently as ComfyUI loads them. Any string
is an input name; a name both required and optional is required; a hidden kind the engine does
not know is kept and supplied as None. A widget that ComfyUI's front end would show anyway (a
default of None, of the wrong type or outside [min, max], an INT with a fractional bound or
step) is repaired, with a warning saying how. Values returned beyond the declared outputs are
dropped (Inspire's and rgthree's RETURN_TYPES answer any index). Only what cannot run is
refused, with the reason: no FUNCTION method, an INPUT_TYPES that fails or declares an input
that is not `(TYPE, options)`.

A combo's choices are asked of INPUT_TYPES again whenever they are needed, as ComfyUI asks for
each catalogue: the files a pack lists change while the server runs. ComfyUI's hooks map onto
the spec: IS_CHANGED is the fingerprint (NaN: always run), and
VALIDATE_INPUTS, check_lazy_status, `lazy` and `rawLink` flags, a FUNCTION taking `**kwargs`
and `async def` methods are the NodeSpec fields of the same meaning. `OUTPUT_IS_LIST` and
`INPUT_IS_LIST` keep ComfyUI's list semantics. Methods run on a fresh instance each call
(class and static methods on the class), given the arguments they name (every one if they take
`**kwargs`).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from .spec import (ALWAYS_RUN, BooleanInput, ComboInput, FloatInput, InputSpec, IntInput, NodeSpec, OutputSpec,
                   SocketInput, StringInput)

_WIDGET_OPTIONS = {
    "INT": ("default", "min", "max", "step", "control_after_generate", "forceInput"),
    "FLOAT": ("default", "min", "max", "step", "round", "forceInput"),
    "STRING": ("default", "multiline", "dynamicPrompts", "forceInput"),
    "BOOLEAN": ("default", "label_on", "label_off", "forceInput"),
}
_COMMON_OPTIONS = ("tooltip", "lazy", "rawLink")
_SNAKE = {"forceInput": "force_input", "dynamicPrompts": "dynamic_prompts", "rawLink": "raw_link"}
_CLASSES = {"INT": IntInput, "FLOAT": FloatInput, "STRING": StringInput, "BOOLEAN": BooleanInput}
_EMPTY = {"STRING": "", "BOOLEAN": False}


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _repair_number(kind: str, fields: dict[str, Any], warn: Callable[[str], None]) -> None:
    """Brings an INT/FLOAT widget's bounds, step and default to values the spec holds, as ComfyUI's front end would."""
    for key in ("min", "max", "step"):
        if key in fields and not _real(fields[key]):
            warn(f"{key} {fields.pop(key)!r} is not a number: ignored")
    if kind == "INT":
        for key, whole in (("min", math.ceil), ("max", math.floor), ("step", lambda step: max(1, round(step)))):
            value = fields.get(key)
            if value is None:
                continue
            if math.isinf(value):  # an INT is unbounded without it
                del fields[key]
                continue
            if whole(value) != value:
                warn(f"{key} {value!r} is not a whole number{' of at least 1' if key == 'step' else ''}: "
                     f"{whole(value)} used")
            fields[key] = int(whole(value))
    low, high = fields.get("min", -math.inf), fields.get("max", math.inf)
    if low > high:
        warn(f"min {low} is above max {high}: both ignored")
        del fields["min"], fields["max"]
        low, high = -math.inf, math.inf
    default = fields.get("default")
    if not _real(default):
        fitted = _clamp(0, low, high)  # where ComfyUI's front end starts a widget without a default
        if "default" in fields:
            warn(f"default {default!r} is not a number: {fitted} used")
    else:
        fitted = _clamp(round(default) if kind == "INT" else default, low, high)
        if fitted != default:
            problem = "is outside" if not low <= default <= high else "is not a whole number in"
            warn(f"default {default!r} {problem} [{low}, {high}]: {fitted} used")
    fields["default"] = fitted


def _repair_plain(kind: str, fields: dict[str, Any], warn: Callable[[str], None]) -> None:
    """A STRING or BOOLEAN default of another type becomes that type (None: the empty value)."""
    if "default" not in fields:
        return
    default, wanted = fields["default"], type(_EMPTY[kind])
    if not isinstance(default, wanted):
        fields["default"] = _EMPTY[kind] if default is None else wanted(default)
        warn(f"default {default!r} is not a {kind}: {fields['default']!r} used")


def _build(cls: type, name: str, fields: dict[str, Any], warn: Callable[[str], None]) -> InputSpec:
    """The input spec; options the spec cannot hold (a tooltip that is not text...) are dropped with a warning."""
    try:
        return cls(name=name, **fields)
    except ValidationError as error:
        bad = {str(e["loc"][0]) for e in error.errors() if e["loc"] and e["loc"][0] in fields} - {"default"}
        if not bad:
            raise
        warn(f"option(s) {', '.join(sorted(bad))} ignored: {' '.join(str(error).split())}")
        return cls(name=name, **{k: v for k, v in fields.items() if k not in bad})


def _entry(entry: Any) -> tuple[Any, dict[str, Any]]:
    """An input declaration's type (a name, or a list of choices) and options."""
    return entry[0], (entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {})


def _choices(kind: Any, opts: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(c) for c in (kind if kind != "COMBO" else opts.get("options", ())))


@dataclass(frozen=True)
class _DeclaredChoices:
    """A combo's choices as INPUT_TYPES declares them now, as ComfyUI asks it for each catalogue and
    validation (lists of files change); those of load time if it fails."""

    cls: type
    section: str
    name: str
    at_load: tuple[str, ...]

    def __call__(self, config: Any = None) -> list[str]:
        try:
            return list(_choices(*_entry(self.cls.INPUT_TYPES()[self.section][self.name])))
        except Exception:  # noqa: BLE001 - pack code; the node was accepted with the list it gave then
            return list(self.at_load)


def _input(cls: type, section: str, name: str, entry: Any, warn: Callable[[str], None]) -> InputSpec:
    if not isinstance(entry, (tuple, list)) or not entry:
        raise ValueError(f"input {name!r}: expected (TYPE, options), got {entry!r}")
    kind, opts = _entry(entry)
    fields = {_SNAKE.get(k, k): opts[k] for k in _COMMON_OPTIONS if opts.get(k) is not None}
    fields["optional"] = section == "optional"
    if isinstance(kind, (list, tuple)) or kind == "COMBO":
        choices = _choices(kind, opts)
        default = None if opts.get("default") is None else str(opts["default"])
        if default is not None and default not in choices:
            warn(f"default {default!r} is not one of the choices: ignored")
            default = None
        return _build(ComboInput, name, fields | {"choices": _DeclaredChoices(cls, section, name, choices),
                                                  "default": default, "image_upload": opts.get("image_upload")}, warn)
    if kind in _CLASSES:
        fields |= {_SNAKE.get(k, k): opts[k] for k in _WIDGET_OPTIONS[kind] if k in opts}
        (_repair_number if kind in ("INT", "FLOAT") else _repair_plain)(kind, fields, warn)
        return _build(_CLASSES[kind], name, fields, warn)
    return _build(SocketInput, name, fields | {"type": str(kind)}, warn)


def _signature(method: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(method)
    except (TypeError, ValueError):  # a callable without one (a builtin): it takes whatever it is given
        return inspect.Signature([inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])


def takes_everything(signature: inspect.Signature) -> bool:
    """Whether a callable with this signature takes **kwargs."""
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def keyword_names(signature: inspect.Signature) -> frozenset[str]:
    """The parameters a callable with this signature takes by keyword."""
    return frozenset(n for n, p in signature.parameters.items()
                     if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))


def method_call(cls: type, attribute: str) -> Callable[..., Any] | None:
    """A class's method as a function of keyword arguments, None if the class has no such method.

    A plain method runs on a fresh instance, a class or static method on the class. The function
    takes any keyword arguments and passes on those the method names (all, if it takes **kwargs);
    it shows the method's signature (without self or cls) and is a coroutine function if the
    method is one.
    """
    raw = inspect.getattr_static(cls, attribute, None)  # through the bases, before binding
    if isinstance(raw, (classmethod, staticmethod)):
        target, bound = raw.__func__, lambda: getattr(cls, attribute)
        signature = _signature(getattr(cls, attribute))
    elif callable(raw):
        target, bound = raw, lambda: getattr(cls(), attribute)
        signature = _signature(raw)
        signature = signature.replace(parameters=list(signature.parameters.values())[1:])  # without self
    else:
        return None
    named = keyword_names(signature)
    everything = takes_everything(signature)

    def given(kwargs: dict[str, Any]) -> dict[str, Any]:
        return kwargs if everything else {k: v for k, v in kwargs.items() if k in named}

    if inspect.iscoroutinefunction(target):
        async def call(**kwargs: Any) -> Any:
            return await bound()(**given(kwargs))
    else:
        def call(**kwargs: Any) -> Any:
            return bound()(**given(kwargs))
    call.__signature__ = signature  # type: ignore[attr-defined]
    call.__name__ = call.__qualname__ = f"{cls.__name__}.{attribute}"
    return call


def _always_run_if_nan(value: Any) -> Any:
    return ALWAYS_RUN if isinstance(value, float) and math.isnan(value) else value


def _fingerprint(cls: type) -> Callable[..., Any] | None:
    """IS_CHANGED with ComfyUI's NaN ("changed every time") as ALWAYS_RUN."""
    is_changed = method_call(cls, "IS_CHANGED")
    if is_changed is None:
        return None
    if inspect.iscoroutinefunction(is_changed):
        async def fingerprint(**inputs: Any) -> Any:
            return _always_run_if_nan(await is_changed(**inputs))
    else:
        def fingerprint(**inputs: Any) -> Any:
            return _always_run_if_nan(is_changed(**inputs))
    fingerprint.__signature__ = is_changed.__signature__  # type: ignore[attr-defined]
    return fingerprint


def ui_lists(ui: dict[str, Any]) -> dict[str, Any]:
    """A UI payload whose tuples are lists: ComfyUI joins each entry's items over calls, the engine joins lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ui.items()}


def declared_outputs(value: Any, count: int) -> Any:
    """A classic return value without the values beyond the `count` declared outputs (ComfyUI ignores them)."""
    if isinstance(value, (tuple, list)):
        return tuple(value)[:count]
    if isinstance(value, dict):
        shaped = dict(value)
        if shaped.get("result") is not None:
            shaped["result"] = tuple(shaped["result"])[:count]
        if isinstance(shaped.get("ui"), dict):
            shaped["ui"] = ui_lists(shaped["ui"])
        return shaped
    return value


def _function(cls: type, method: str, outputs: int) -> Callable[..., Any]:
    call = method_call(cls, method)
    if call is None:
        raise ValueError(f"FUNCTION names {method!r}, which the class does not define as a method")
    if inspect.iscoroutinefunction(call):
        async def run(**kwargs: Any) -> Any:
            return declared_outputs(await call(**kwargs), outputs)
    else:
        def run(**kwargs: Any) -> Any:
            return declared_outputs(call(**kwargs), outputs)
    run.__signature__ = call.__signature__  # type: ignore[attr-defined]
    return run


def _inputs(cls: type, declared: dict[str, Any], warn: Callable[[str], None]) -> list[InputSpec]:
    required = dict(declared.get("required") or {})
    optional = {}
    for name, entry in (declared.get("optional") or {}).items():
        if name in required:
            warn(f"input {name!r} is declared required and optional: it is required")
        else:
            optional[name] = entry
    return ([_input(cls, "required", str(n), e, warn) for n, e in required.items()]
            + [_input(cls, "optional", str(n), e, warn) for n, e in optional.items()])


def _hidden(declared: dict[str, Any]) -> dict[str, str]:
    """Hidden inputs by name; a kind may be given as ("KIND",) (V3's rendering)."""
    return {str(name): str(kind[0] if isinstance(kind, (list, tuple)) and kind else kind)
            for name, kind in (declared.get("hidden") or {}).items()}


def classic_spec(name: str, cls: type, display_name: str | None = None,
                 module: str = "custom") -> tuple[NodeSpec, list[str]]:
    """A ComfyUI-classic node class as a NodeSpec, and warnings on what was repaired (raises if it cannot run)."""
    warnings: list[str] = []
    declared = cls.INPUT_TYPES()
    if not isinstance(declared, dict):
        raise ValueError(f"INPUT_TYPES() returned {type(declared).__name__}, not a dict of input sections")
    inputs = _inputs(cls, declared, warnings.append)
    return_types = tuple(getattr(cls, "RETURN_TYPES", None) or ())
    count = len(return_types)
    names = tuple(getattr(cls, "RETURN_NAMES", None) or ())
    is_list = tuple(getattr(cls, "OUTPUT_IS_LIST", None) or ())
    tooltips = tuple(getattr(cls, "OUTPUT_TOOLTIPS", None) or ())
    method = getattr(cls, "FUNCTION")
    function = _function(cls, method, count)
    validate = method_call(cls, "VALIDATE_INPUTS")
    validate_signature = _signature(validate) if validate else inspect.Signature()
    spec = NodeSpec(
        name=name,
        display_name=str(display_name or name),
        category=str(getattr(cls, "CATEGORY", "custom")),
        description=str(getattr(cls, "DESCRIPTION", "") or ""),
        inputs=tuple(inputs),
        hidden=_hidden(declared),
        outputs=tuple(OutputSpec(type=str(t), name=str(names[i] if i < len(names) else t),
                                 is_list=bool(is_list[i]) if i < len(is_list) else False,
                                 tooltip=tooltips[i] if i < len(tooltips) and tooltips[i] else None)
                      for i, t in enumerate(return_types)),
        output_node=bool(getattr(cls, "OUTPUT_NODE", False)),
        input_is_list=bool(getattr(cls, "INPUT_IS_LIST", False)),
        not_idempotent=bool(getattr(cls, "NOT_IDEMPOTENT", False)),
        function=function,
        fingerprint=_fingerprint(cls),
        lazy_status=method_call(cls, "check_lazy_status"),
        validate_inputs=validate,
        validate_inputs_takes=keyword_names(validate_signature),
        validate_inputs_takes_all=takes_everything(validate_signature),
        accepts_extra_inputs=takes_everything(function.__signature__),
        python_module=module,
        deprecated=bool(getattr(cls, "DEPRECATED", False)),
        experimental=bool(getattr(cls, "EXPERIMENTAL", False)),
    )
    return spec, warnings


def spec_from_classic(name: str, cls: type, display_name: str | None = None, module: str = "custom") -> NodeSpec:
    """Converts a ComfyUI-classic node class into a NodeSpec (raises ValueError on a declaration that cannot run)."""
    return classic_spec(name, cls, display_name, module)[0]
