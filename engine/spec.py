"""Node specifications: what a node type takes and gives, as pydantic models.

A spec is plain data plus one function. Both ways of writing a node (the `@node` decorator and
ComfyUI-classic classes) end up as a `NodeSpec`; the registry renders specs in the shape of
ComfyUI's `GET /object_info`, and validation checks workflows against them.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, Callable, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Sentinel a fingerprint function returns for nodes whose side effects must repeat every run.
ALWAYS_RUN = "__always_run__"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")


class _Input(_Spec):
    name: str = ""
    optional: bool = False
    tooltip: str | None = None

    def options(self) -> dict[str, Any]:
        """The option dict of this input in ComfyUI's catalogue shape."""
        opts = {k: v for k, v in self.model_dump(exclude={"name", "optional", "kind", "type", "choices",
                                                           "files_in"}).items() if v is not None}
        return {_CAMEL.get(k, k): v for k, v in opts.items()}


_CAMEL = {"force_input": "forceInput", "image_upload": "image_upload", "dynamic_prompts": "dynamicPrompts"}


class IntInput(_Input):
    kind: Literal["INT"] = "INT"
    default: int = 0
    min: int = -(2**63)
    max: int = 2**64 - 1
    step: int = 1
    control_after_generate: bool | None = None
    force_input: bool | None = None

    @model_validator(mode="after")
    def _default_in_range(self) -> "IntInput":
        if not self.min <= self.default <= self.max:
            raise ValueError(f"default {self.default} is outside [{self.min}, {self.max}]")
        return self


class FloatInput(_Input):
    kind: Literal["FLOAT"] = "FLOAT"
    default: float = 0.0
    min: float = -math.inf
    max: float = math.inf
    step: float = 0.01
    round: float | bool | None = None
    force_input: bool | None = None

    @model_validator(mode="after")
    def _default_in_range(self) -> "FloatInput":
        if not self.min <= self.default <= self.max:
            raise ValueError(f"default {self.default} is outside [{self.min}, {self.max}]")
        return self

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
    `files_in` names that folder for error messages ("models/checkpoints").
    """

    kind: Literal["COMBO"] = "COMBO"
    choices: Sequence[str] | Callable[[Any], Sequence[str]]
    default: str | None = None
    files_in: str | None = None
    image_upload: bool | None = None

    def resolve(self, config: Any) -> list[str]:
        """The current list of choices."""
        return list(self.choices(config) if callable(self.choices) else self.choices)


class SocketInput(_Input):
    """An input fed by a link from another node's output of a named type."""

    kind: Literal["SOCKET"] = "SOCKET"
    type: str
    lazy: bool | None = None


WidgetInput = Union[IntInput, FloatInput, StringInput, BooleanInput, ComboInput]
InputSpec = Union[IntInput, FloatInput, StringInput, BooleanInput, ComboInput, SocketInput]


class Hidden(str, Enum):
    """Values the executor supplies instead of the workflow."""

    PROMPT = "PROMPT"  # the whole API-format workflow being run
    UNIQUE_ID = "UNIQUE_ID"  # this node's id (puts the id in the cache key)
    EXTRA_PNGINFO = "EXTRA_PNGINFO"  # extra_data.extra_pnginfo (the UI workflow for PNG metadata)
    CONTEXT = "CONTEXT"  # the RunContext: configuration, progress reporting, interrupt checks


class OutputSpec(_Spec):
    type: str
    name: str
    is_list: bool = False
    tooltip: str | None = None


class NodeSpec(_Spec):
    """One node type: its inputs, outputs, metadata and the function that runs it."""

    name: str = Field(min_length=1)
    display_name: str
    category: str = "sigmagraph"
    description: str = ""
    inputs: tuple[InputSpec, ...] = ()
    hidden: dict[str, Hidden] = Field(default_factory=dict)
    outputs: tuple[OutputSpec, ...] = ()
    output_node: bool = False
    input_is_list: bool = False
    not_idempotent: bool = False  # the node id joins the cache key: identical nodes never share results
    function: Callable[..., Any]
    fingerprint: Callable[..., Any] | None = None
    python_module: str = "sigmagraph"
    deprecated: bool = False
    experimental: bool = False

    @model_validator(mode="after")
    def _check(self) -> "NodeSpec":
        names = [i.name for i in self.inputs] + list(self.hidden)
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"node {self.name}: duplicate input names {sorted(duplicates)}")
        if any(not n.isidentifier() for n in names):
            raise ValueError(f"node {self.name}: input names must be identifiers, got {names}")
        if not self.outputs and not self.output_node:
            raise ValueError(f"node {self.name}: a node with no outputs must be an output node")
        return self

    def input(self, name: str) -> InputSpec | None:
        """The declared input called `name`, if any."""
        return next((i for i in self.inputs if i.name == name), None)

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
            inputs["hidden"] = {name: kind.value for name, kind in self.hidden.items()}
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
