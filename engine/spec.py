"""Node specifications: what a node type takes and gives, as pydantic models.

A spec is plain data plus one function. Both ways of writing a node (the `@node` decorator and
ComfyUI-classic classes) end up as a `NodeSpec`; the registry renders specs in the shape of
ComfyUI's `GET /object_info`, and validation checks workflows against them.
"""

from __future__ import annotations

import inspect
import math
from enum import Enum
from typing import Any, Awaitable, Callable, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Sentinel a fingerprint function returns for nodes whose side effects must repeat every run.
ALWAYS_RUN = "__always_run__"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")


class _Input(_Spec):
    name: str = ""
    optional: bool = False
    tooltip: str | None = None
    # ComfyUI's `lazy`: a linked input is evaluated only when the node's `lazy_status` asks for it
    # (None until then). Applies to links only; a literal is always there.
    lazy: bool | None = None
    # ComfyUI's `rawLink`: the node receives the link itself, [source id, output index], not the value;
    # the source still runs first (loop nodes use it to find the start of their body).
    raw_link: bool | None = None

    def options(self) -> dict[str, Any]:
        """The option dict of this input in ComfyUI's catalogue shape."""
        opts = {k: v for k, v in self.model_dump(exclude={"name", "optional", "kind", "type", "choices",
                                                           "files_in", "dynamic"}).items() if v is not None}
        return {_CAMEL.get(k, k): v for k, v in opts.items()}


_CAMEL = {"force_input": "forceInput", "image_upload": "image_upload", "dynamic_prompts": "dynamicPrompts",
          "raw_link": "rawLink"}


class _NumberInput(_Input):
    """An INT or FLOAT widget: its subclass declares `default`, `min` and `max`."""

    @model_validator(mode="after")
    def _default_in_range(self) -> "_NumberInput":
        if not self.min <= self.default <= self.max:
            raise ValueError(f"default {self.default} is outside [{self.min}, {self.max}]")
        return self


class IntInput(_NumberInput):
    kind: Literal["INT"] = "INT"
    default: int = 0
    min: int = -(2**63)
    max: int = 2**64 - 1
    step: int = 1
    control_after_generate: bool | None = None
    force_input: bool | None = None


class FloatInput(_NumberInput):
    kind: Literal["FLOAT"] = "FLOAT"
    default: float = 0.0
    min: float = -math.inf
    max: float = math.inf
    step: float = 0.01
    round: float | bool | None = None
    force_input: bool | None = None

    def options(self) -> dict[str, Any]:
        # JSON has no infinity: unbounded ends are left out, as ComfyUI's catalogue does.
        return {k: v for k, v in super().options().items() if not (isinstance(v, float) and math.isinf(v))}


class StringInput(_Input):
    kind: Literal["STRING"] = "STRING"
    default: str = ""
    multiline: bool = False
    dynamic_prompts: bool | None = None
    force_input: bool | None = None


class BooleanInput(_Input):
    kind: Literal["BOOLEAN"] = "BOOLEAN"
    default: bool = False
    label_on: str | None = None
    label_off: str | None = None
    force_input: bool | None = None


class ComboInput(_Input):
    """A choice among strings: a fixed list, or a list computed when the catalogue is built.

    `choices` may be a function of the run configuration (e.g. the files in a models folder);
    `files_in` names that folder for error messages ("models/checkpoints"). `dynamic` makes it
    ComfyUI V3's DynamicCombo: each choice brings the inputs it names (declared after the combo,
    named "<combo>.<input>"), and the inputs of the other choices are absent.
    """

    kind: Literal["COMBO"] = "COMBO"
    choices: Sequence[str] | Callable[[Any], Sequence[str]]
    default: str | None = None
    files_in: str | None = None
    image_upload: bool | None = None
    dynamic: dict[str, tuple[str, ...]] | None = None

    def resolve(self, config: Any) -> list[str]:
        """The current list of choices."""
        return list(self.choices(config) if callable(self.choices) else self.choices)


class SocketInput(_Input):
    """An input fed by a link from another node's output of a named type."""

    kind: Literal["SOCKET"] = "SOCKET"
    type: str


WidgetInput = Union[IntInput, FloatInput, StringInput, BooleanInput, ComboInput]
InputSpec = Union[IntInput, FloatInput, StringInput, BooleanInput, ComboInput, SocketInput]


class Hidden(str, Enum):
    """Values the executor supplies instead of the workflow."""

    PROMPT = "PROMPT"  # the whole API-format workflow being run
    UNIQUE_ID = "UNIQUE_ID"  # this node's id (puts the id in the cache key)
    EXTRA_PNGINFO = "EXTRA_PNGINFO"  # extra_data.extra_pnginfo (the UI workflow for PNG metadata)
    CONTEXT = "CONTEXT"  # the RunContext: configuration, progress reporting, interrupt checks
    DYNPROMPT = "DYNPROMPT"  # the run's DynamicPrompt (engine/expansion.py): the prompt plus expanded nodes
    PROMPT_ID = "PROMPT_ID"  # the id of the prompt being run


class OutputSpec(_Spec):
    type: str
    name: str
    is_list: bool = False
    tooltip: str | None = None


class NodeSpec(_Spec):
    """One node type: its inputs, outputs, metadata and the function that runs it.

    The callables follow ComfyUI's execution semantics; each may be a coroutine function (or return
    an awaitable), which the executor awaits, overlapping independent async nodes of a run:

    - `function(**inputs, **hidden)` computes the outputs: a value, a tuple, a `NodeOutput`, ComfyUI's
      `{"ui": ..., "result": ...}` dict, or an expansion (`NodeOutput(expand=graph, result=...)` or
      `{"expand": graph, "result": ...}`: see engine/expansion.py). An output value may be an
      `ExecutionBlocker`. Inputs are one value each, called once per list element (ComfyUI's list
      semantics), or whole lists when `input_is_list`.
    - `function_async(**inputs, **hidden)`, when set, is awaited instead of `function` (for adapters
      whose `function` blocks on a coroutine, e.g. a V3 node's `call_async`).
    - `fingerprint(**values)` (ComfyUI's IS_CHANGED): called before the run with the literal inputs
      and the linked ones as None (those it names, or all if it takes **kwargs), the hidden values
      it names, and `config` (the run's Config) if it names it; its result joins the cache key,
      `ALWAYS_RUN` (ComfyUI's NaN) re-runs the node every time, and an exception counts as ALWAYS_RUN.
    - `lazy_status(**inputs, **hidden)` (ComfyUI's check_lazy_status): called before `function`
      with the inputs available so far, lazy inputs not yet evaluated as None, and returns the names
      of the lazy inputs it needs; it is called again once they are evaluated, until it asks for
      nothing new. Lazy inputs never asked for are never evaluated and reach `function` as None.
    - `validate_inputs(**values)` (ComfyUI's VALIDATE_INPUTS): called by validation with the inputs
      it takes (`validate_inputs_takes`, or every input when `validate_inputs_takes_all`): literals
      converted to their widget's type, linked inputs as None, hidden ones (the prompt, the node id;
      other kinds None) and, if it takes `input_types`, the output type of each linked input by
      name; it is not called when the node's other checks failed. The inputs it takes are trusted
      to it: their range, their combo choices and a literal given to a socket type (a custom or
      union type) are not checked, nor, if it takes `input_types`, the types of its links. It
      returns True, or an error string that becomes the node's `custom_validation_failed` error.
    - `accepts_extra_inputs`: the function takes **kwargs, so inputs a workflow gives the node
      beyond its declared ones (literals and links) are passed to it and join its cache key.

    `hidden` maps parameter names to `Hidden` kinds; a kind the engine does not know (a string) is
    supplied as None.
    """

    name: str = Field(min_length=1)
    display_name: str
    category: str = "sigmagraph"
    description: str = ""
    inputs: tuple[InputSpec, ...] = ()
    hidden: dict[str, Hidden | str] = Field(default_factory=dict)
    outputs: tuple[OutputSpec, ...] = ()
    output_node: bool = False
    input_is_list: bool = False
    not_idempotent: bool = False  # the node id joins the cache key: identical nodes never share results
    function: Callable[..., Any]
    function_async: Callable[..., Awaitable[Any]] | None = None
    fingerprint: Callable[..., Any] | None = None
    lazy_status: Callable[..., Any] | None = None
    validate_inputs: Callable[..., Any] | None = None
    validate_inputs_takes: frozenset[str] = frozenset()  # the parameters it names ("input_types" included)
    validate_inputs_takes_all: bool = False  # it takes **kwargs: every input
    accepts_extra_inputs: bool = False
    python_module: str = "sigmagraph"
    deprecated: bool = False
    experimental: bool = False

    @field_validator("hidden", mode="before")
    @classmethod
    def _known_hidden(cls, hidden: Any) -> Any:
        """Known kinds given as strings become `Hidden` members; others stay strings (supplied as None)."""
        if not isinstance(hidden, dict):
            return hidden
        known = {k.value for k in Hidden}
        return {name: Hidden(kind) if isinstance(kind, str) and kind in known else kind
                for name, kind in hidden.items()}

    @model_validator(mode="after")
    def _check(self) -> "NodeSpec":
        names = [i.name for i in self.inputs] + list(self.hidden)
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"node {self.name}: duplicate input names {sorted(duplicates)}")
        # Any text names an input, as in ComfyUI ("image 1", V3's dotted "values.a"); a function takes
        # the names that are not identifiers as **kwargs.
        if not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"node {self.name}: input names must be non-empty strings, got {names}")
        if not self.outputs and not self.output_node:
            raise ValueError(f"node {self.name}: a node with no outputs must be an output node")
        return self

    def input(self, name: str) -> InputSpec | None:
        """The declared input called `name`, if any."""
        return next((i for i in self.inputs if i.name == name), None)

    @property
    def runs_async(self) -> bool:
        """Whether the executor awaits this node's call (it starts such nodes first, so they overlap)."""
        return self.function_async is not None or inspect.iscoroutinefunction(self.function)

    def inactive_inputs(self, values: dict[str, Any]) -> set[str]:
        """The inputs that dynamic combos leave out for these values (those of the choices not taken)."""
        inactive: set[str] = set()
        for inp in self.inputs:
            if isinstance(inp, ComboInput) and inp.dynamic:
                value = values.get(inp.name)
                taken = inp.dynamic.get(value, ()) if isinstance(value, str) and inp.name not in inactive else ()
                inactive |= {name for names in inp.dynamic.values() for name in names} - set(taken)
        return inactive

    def socket_types(self) -> set[str]:
        """Every socket type this node mentions (inputs and outputs)."""
        return {i.type for i in self.inputs if isinstance(i, SocketInput)} | {o.type for o in self.outputs}

    def catalogue_entry(self, config: Any) -> dict[str, Any]:
        """This node in the shape of one entry of ComfyUI's `GET /object_info`."""
        sections: dict[str, dict[str, list]] = {"required": {}, "optional": {}}
        for inp in self.inputs:
            if isinstance(inp, SocketInput):
                entry: list = [inp.type, inp.options()] if inp.options() else [inp.type]
            elif isinstance(inp, ComboInput):
                entry = [inp.resolve(config), inp.options()]
            else:
                entry = [inp.kind, inp.options()]
            sections["optional" if inp.optional else "required"][inp.name] = entry
        inputs: dict[str, Any] = {"required": sections["required"]}
        if sections["optional"]:
            inputs["optional"] = sections["optional"]
        if self.hidden:
            inputs["hidden"] = {name: getattr(kind, "value", kind) for name, kind in self.hidden.items()}
        return {
            "input": inputs,
            "input_order": {k: list(v) for k, v in sections.items() if v or k == "required"},
            "output": [o.type for o in self.outputs],
            "output_is_list": [o.is_list for o in self.outputs],
            "output_name": [o.name for o in self.outputs],
            "output_tooltips": [o.tooltip or "" for o in self.outputs],
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
            "deprecated": self.deprecated,
            "experimental": self.experimental,
        }
