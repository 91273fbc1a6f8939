"""The modern way to write a node: a type-annotated function with input specs as defaults.

    @node(category="sampling/schedulers", returns=["SIGMAS"])
    def KarrasScheduler(steps: int = Int(20, min=1, max=10000), sigma_max: float = Float(14.614642),
                        model=Socket("MODEL", optional=True)):
        '''Karras et al. (2022) noise levels.'''
        return karras_sigmas(steps, ...)

A parameter's default is its input spec (`Int`, `Float`, `String`, `Boolean`, `Combo`, `Socket`)
or a `Hidden` value; a plain literal default with an int/float/str/bool annotation becomes a
widget with that default. The function returns its outputs (a value, a tuple, or `NodeOutput`).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .spec import (ALWAYS_RUN, BooleanInput, ComboInput, FloatInput, Hidden, InputSpec, IntInput, NodeSpec,
                   OutputSpec, SocketInput, StringInput)

NODE_SPEC_ATTRIBUTE = "__node_spec__"


@dataclass
class NodeOutput:
    """A node's result: its output values and, for output nodes, the UI payload (e.g. images)."""

    result: tuple = ()
    ui: dict[str, Any] | None = field(default=None)


def Int(default: int = 0, **options: Any) -> IntInput:
    """An INT widget (options: min, max, step, control_after_generate, optional, tooltip)."""
    return IntInput(default=default, **options)


def Float(default: float = 0.0, **options: Any) -> FloatInput:
    """A FLOAT widget (options: min, max, step, round, optional, tooltip)."""
    return FloatInput(default=default, **options)


def String(default: str = "", **options: Any) -> StringInput:
    """A STRING widget (options: multiline, optional, tooltip)."""
    return StringInput(default=default, **options)


def Boolean(default: bool = False, **options: Any) -> BooleanInput:
    """A BOOLEAN widget (options: label_on, label_off, optional, tooltip)."""
    return BooleanInput(default=default, **options)


def Combo(choices: Sequence[str] | Callable[[Any], Sequence[str]], default: str | None = None,
          **options: Any) -> ComboInput:
    """A COMBO widget: a fixed list, or a function of the configuration computed per catalogue."""
    return ComboInput(choices=choices if callable(choices) else tuple(choices), default=default, **options)


def Socket(type: str, **options: Any) -> SocketInput:
    """An input linked from another node's output of socket type `type` (options: optional, tooltip)."""
    return SocketInput(type=type, **options)


_WIDGET_BY_ANNOTATION = {int: IntInput, float: FloatInput, str: StringInput, bool: BooleanInput,
                         "int": IntInput, "float": FloatInput, "str": StringInput, "bool": BooleanInput}


def _input_from_parameter(node_name: str, p: inspect.Parameter) -> InputSpec | Hidden:
    default = p.default
    if isinstance(default, (IntInput, FloatInput, StringInput, BooleanInput, ComboInput, SocketInput)):
        return default.model_copy(update={"name": p.name})
    if isinstance(default, Hidden):
        return default
    widget = _WIDGET_BY_ANNOTATION.get(p.annotation)
    if widget is None:
        raise TypeError(f"node {node_name}: parameter {p.name!r} needs an input spec as its default "
                        f"(Int, Float, String, Boolean, Combo, Socket or Hidden)")
    if default is inspect.Parameter.empty:
        return widget(name=p.name)
    return widget(name=p.name, default=default)


def _output_spec(entry: str | tuple[str, str] | OutputSpec) -> OutputSpec:
    if isinstance(entry, OutputSpec):
        return entry
    if isinstance(entry, str):
        return OutputSpec(type=entry, name=entry)
    return OutputSpec(type=entry[0], name=entry[1])


def node(name: str | None = None, *, display_name: str | None = None, category: str = "sigmagraph",
         description: str | None = None, returns: Sequence[str | tuple[str, str] | OutputSpec] = (),
         output_node: bool = False, fingerprint: Callable[..., Any] | None = None, always_run: bool = False,
         input_is_list: bool = False) -> Callable[[Callable], Callable]:
    """Declares a function as a node type; the registry finds it when it loads the module.

    `returns` lists output types, or (type, name) pairs. `fingerprint(**widget_values)` returns a
    value that changes when external state changes (a file's size and mtime); one with a `config`
    parameter also gets the run's Config (to find the file). `always_run=True` re-runs the node on
    every run (side effects that must repeat).
    """

    def decorate(fn: Callable) -> Callable:
        node_name = name or fn.__name__
        inputs: list[InputSpec] = []
        hidden: dict[str, Hidden] = {}
        for p in inspect.signature(fn).parameters.values():
            spec = _input_from_parameter(node_name, p)
            if isinstance(spec, Hidden):
                hidden[p.name] = spec
            else:
                inputs.append(spec)
        spec = NodeSpec(
            name=node_name,
            display_name=display_name or node_name,
            category=category,
            description=description if description is not None else inspect.cleandoc(fn.__doc__ or ""),
            inputs=tuple(inputs),
            hidden=hidden,
            outputs=tuple(_output_spec(r) for r in returns),
            output_node=output_node,
            input_is_list=input_is_list,
            function=fn,
            fingerprint=(lambda **_: ALWAYS_RUN) if always_run else fingerprint,
            python_module=fn.__module__,
        )
        setattr(fn, NODE_SPEC_ATTRIBUTE, spec)
        return fn

    return decorate


def normalize_result(spec: NodeSpec, value: Any) -> NodeOutput:
    """Brings any accepted return shape (value, tuple, NodeOutput, ComfyUI's {"ui", "result"}) to NodeOutput."""
    if isinstance(value, NodeOutput):
        out = value
    elif isinstance(value, dict) and {"ui", "result"} & value.keys():
        out = NodeOutput(tuple(value.get("result") or ()), value.get("ui"))
    elif isinstance(value, tuple):
        out = NodeOutput(value)
    elif value is None and not spec.outputs:
        out = NodeOutput()
    elif len(spec.outputs) == 1:
        out = NodeOutput((value,))
    else:
        raise TypeError(f"node {spec.name} returned {type(value).__name__}, expected a tuple of "
                        f"{len(spec.outputs)} outputs")
    if len(out.result) != len(spec.outputs) and not (spec.output_node and not out.result):
        raise TypeError(f"node {spec.name} returned {len(out.result)} outputs, its spec declares "
                        f"{len(spec.outputs)}")
    return out
