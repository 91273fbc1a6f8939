"""The modern way to write a node: a type-annotated function with input specs as defaults.

    @node(category="sampling/schedulers", returns=["SIGMAS"])
    def KarrasScheduler(steps: int = Int(20, min=1, max=10000), sigma_max: float = Float(14.614642),
                        model=Socket("MODEL", optional=True)):
        '''Karras et al. (2022) noise levels.'''
        return karras_sigmas(steps, ...)

A parameter's default is its input spec (`Int`, `Float`, `String`, `Boolean`, `Combo`, `Socket`)
or a `Hidden` value; a plain literal default with an int/float/str/bool annotation becomes a
widget with that default. The function returns its outputs (a value, a tuple, or `NodeOutput`);
it may be `async def`, and is then awaited.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .expansion import ExecutionBlocker
from .spec import (ALWAYS_RUN, BooleanInput, ComboInput, FloatInput, Hidden, InputSpec, IntInput, NodeSpec,
                   OutputSpec, SocketInput, StringInput)

NODE_SPEC_ATTRIBUTE = "__node_spec__"


@dataclass
class NodeOutput:
    """A node's result: its output values and, for output nodes, the UI payload (e.g. images).

    With `expand` (API-format nodes, see expansion.py) the node expands: `result` may then hold
    links `[node id, output index]` into that graph, which the run resolves to their values.
    """

    result: tuple = ()
    ui: dict[str, Any] | None = field(default=None)
    expand: dict[str, dict[str, Any]] | None = None


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
         input_is_list: bool = False, inputs: Sequence[InputSpec] = (), lazy_status: Callable[..., Any] | None = None,
         validate_inputs: Callable[..., Any] | None = None,
         extra_inputs: bool = False) -> Callable[[Callable], Callable]:
    """Declares a function as a node type; the registry finds it when it loads the module.

    `returns` lists output types, or (type, name) pairs. `inputs` are more inputs, after the
    parameters', whose names need not be identifiers (ComfyUI V3's "values.a", "resize_type.width"):
    the function takes them as **kwargs. `fingerprint(**widget_values)` returns a
    value that changes when external state changes (a file's size and mtime); one with a `config`
    parameter also gets the run's Config (to find the file). `always_run=True` re-runs the node on
    every run (side effects that must repeat). `lazy_status` and `validate_inputs` are ComfyUI's
    check_lazy_status and VALIDATE_INPUTS (see NodeSpec); validate_inputs takes the inputs it names.
    `extra_inputs=True` lets a workflow give inputs beyond the declared ones, which the function takes
    as **kwargs (a node an expansion wires a varying number of links to).
    """

    def decorate(fn: Callable) -> Callable:
        node_name = name or fn.__name__
        declared: list[InputSpec] = []
        hidden: dict[str, Hidden] = {}
        parameters = inspect.signature(fn).parameters.values()
        for p in parameters:
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            spec = _input_from_parameter(node_name, p)
            if isinstance(spec, Hidden):
                hidden[p.name] = spec
            else:
                declared.append(spec)
        if (inputs or extra_inputs) and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            raise TypeError(f"node {node_name}: named `inputs` and `extra_inputs` need a **kwargs parameter")
        # An optional input left out arrives as its widget's default (None for a socket), not as its spec.
        omitted = {i.name: None if isinstance(i, SocketInput) else i.default for i in declared if i.optional}
        spec = NodeSpec(
            name=node_name,
            display_name=display_name or node_name,
            category=category,
            description=description if description is not None else inspect.cleandoc(fn.__doc__ or ""),
            inputs=(*declared, *inputs),
            hidden=hidden,
            outputs=tuple(_output_spec(r) for r in returns),
            output_node=output_node,
            input_is_list=input_is_list,
            function=_with_defaults(fn, omitted) if omitted else fn,
            fingerprint=(lambda **_: ALWAYS_RUN) if always_run else fingerprint,
            lazy_status=lazy_status,
            **(_validation(validate_inputs) if validate_inputs else {}),
            accepts_extra_inputs=extra_inputs,
            python_module=fn.__module__,
        )
        setattr(fn, NODE_SPEC_ATTRIBUTE, spec)
        return fn

    return decorate


@functools.lru_cache(maxsize=1024)
def keyword_parameters(function: Callable) -> tuple[frozenset[str], bool]:
    """The parameters a callable names, and whether it also takes **kwargs (everything, when unreadable)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return frozenset(), True
    return (frozenset(p.name for p in parameters if p.kind is not inspect.Parameter.VAR_KEYWORD),
            any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters))


def _validation(validate_inputs: Callable[..., Any]) -> dict[str, Any]:
    """The NodeSpec fields of a validate_inputs function: it takes the inputs its parameters name."""
    takes, takes_all = keyword_parameters(validate_inputs)
    return {"validate_inputs": validate_inputs, "validate_inputs_takes": takes, "validate_inputs_takes_all": takes_all}


def _with_defaults(fn: Callable, omitted: dict[str, Any]) -> Callable:
    """`fn` called with the defaults of the optional inputs a workflow leaves out (still async if fn is)."""
    if inspect.iscoroutinefunction(fn):
        async def call_async(**values: Any) -> Any:
            return await fn(**{**omitted, **values})
        return functools.wraps(fn)(call_async)
    return functools.wraps(fn)(lambda **values: fn(**{**omitted, **values}))


def _results(spec: NodeSpec, result: Any) -> tuple:
    """A result tuple; a lone ExecutionBlocker blocks every output (ComfyUI's shorthand)."""
    return (result,) * len(spec.outputs) if isinstance(result, ExecutionBlocker) else tuple(result or ())


def normalize_result(spec: NodeSpec, value: Any) -> NodeOutput:
    """Brings any accepted return shape (value, tuple, NodeOutput, ExecutionBlocker, ComfyUI's
    {"ui", "result", "expand"}) to NodeOutput."""
    if isinstance(value, NodeOutput):
        out = value
    elif isinstance(value, ExecutionBlocker):
        out = NodeOutput(_results(spec, value))
    elif isinstance(value, dict) and {"ui", "result", "expand"} & value.keys():
        out = NodeOutput(_results(spec, value.get("result")), value.get("ui"), value.get("expand"))
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
