"""ComfyUI's UI (litegraph) documents: nodes, slots, links, subgraph definitions, and widget values.

The models accept what ComfyUI's front end writes: links as lists `[id, origin, slot, target,
slot, type]` (v0.4 and the root graph of files with subgraphs) or objects (v1, and inside
subgraph definitions); subgraph definitions under `definitions.subgraphs`; legacy group nodes
under `extra.groupNodes`. `widgets_values` is positional, so naming its values needs the node's
spec from the catalogue: they follow the widget inputs (required, then optional) with an extra
value after a seed's "control after generate" widget and after an image-upload button.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .spec import ComboInput, InputSpec, IntInput, NodeSpec, SocketInput

MUTED, BYPASSED = 2, 4
UI_ONLY_TYPES = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
LINK_FIELDS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")


def _without_nulls(data: Any) -> Any:
    # The front end writes null for absent lists and objects (links, inputs, properties, extra...).
    return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class UiSlot(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = ""
    type: Any = "*"
    link: int | None = None
    links: list[int] | None = None
    widget: dict[str, Any] | None = None


class UiNode(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | str
    type: str
    mode: int = 0
    title: str | None = None
    pos: list[float] | dict[str, float] | None = None
    inputs: list[UiSlot] = Field(default_factory=list)
    outputs: list[UiSlot] = Field(default_factory=list)
    widgets_values: list[Any] | dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        return _without_nulls(data)


class UiLink(BaseModel):
    id: int
    origin_id: int | str
    origin_slot: int
    target_id: int | str
    target_slot: int
    type: Any = "*"

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        return dict(zip(LINK_FIELDS, data)) if isinstance(data, list) else data


class SubgraphSlot(BaseModel):
    """An input or output of a subgraph definition; `linkIds` are the links inside that use it."""

    model_config = ConfigDict(extra="allow")
    name: str = ""
    type: Any = "*"
    linkIds: list[int] = Field(default_factory=list)


class SubgraphDefinition(BaseModel):
    """One entry of `definitions.subgraphs`: a graph whose instances are nodes of type `id`."""

    model_config = ConfigDict(extra="allow")
    id: str
    name: str = ""
    inputs: list[SubgraphSlot] = Field(default_factory=list)
    outputs: list[SubgraphSlot] = Field(default_factory=list)
    nodes: list[UiNode] = Field(default_factory=list)
    links: list[UiLink] = Field(default_factory=list)


class GroupNodeData(BaseModel):
    """One legacy group node of `extra.groupNodes`: links are [origin index, slot, target index, slot, ...]."""

    model_config = ConfigDict(extra="allow")
    nodes: list[UiNode] = Field(default_factory=list)
    links: list[list[Any]] = Field(default_factory=list)
    external: list[list[Any]] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _number_nodes(cls, data: Any) -> Any:
        # Inner nodes are known by their index; the front end's copy of them may carry no id.
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            nodes = [{**n, "id": i} if isinstance(n, dict) else n for i, n in enumerate(data["nodes"])]
            data = {**data, "nodes": nodes}
        return data


class UiDefinitions(BaseModel):
    model_config = ConfigDict(extra="allow")
    subgraphs: list[SubgraphDefinition] = Field(default_factory=list)


class UiExtra(BaseModel):
    model_config = ConfigDict(extra="allow")
    groupNodes: dict[str, GroupNodeData] = Field(default_factory=dict)


class UiWorkflow(BaseModel):
    model_config = ConfigDict(extra="allow")
    nodes: list[UiNode]
    links: list[UiLink] = Field(default_factory=list)
    definitions: UiDefinitions = Field(default_factory=UiDefinitions)
    extra: UiExtra = Field(default_factory=UiExtra)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        return _without_nulls(data)


def widget_inputs(spec: NodeSpec) -> list[InputSpec]:
    """The inputs that are widgets on the canvas, in the order of `widgets_values`."""
    required = [i for i in spec.inputs if not i.optional]
    optional = [i for i in spec.inputs if i.optional]
    return [i for i in required + optional
            if not isinstance(i, SocketInput) and not getattr(i, "force_input", None)]


def has_control_widget(widget: InputSpec) -> bool:
    """Whether the front end adds a "control after generate" widget (with its own value) after this one."""
    return isinstance(widget, IntInput) and bool(widget.control_after_generate or widget.name in ("seed", "noise_seed"))


def has_upload_widget(widget: InputSpec) -> bool:
    """Whether the front end adds an upload button (serialized as the value "image") after this one."""
    return isinstance(widget, ComboInput) and bool(widget.image_upload)


def named_widget_values(node: UiNode, spec: NodeSpec | None) -> dict[str, Any]:
    """A node's widget values by input name (empty for a list of values of an unknown node type)."""
    if isinstance(node.widgets_values, dict):
        return dict(node.widgets_values)
    if spec is None:
        return {}
    values, out = list(node.widgets_values or []), {}
    i = 0
    for widget in widget_inputs(spec):
        if widget.name in spec.inactive_inputs(out):
            continue  # a dynamic combo's widget for a choice not taken: the front end does not show it
        if i >= len(values):  # a file saved before the node had this widget: the front end shows its default
            if getattr(widget, "default", None) is not None:
                out[widget.name] = widget.default
            continue
        out[widget.name] = values[i]
        i += 1
        if i < len(values) and ((has_control_widget(widget) and values[i] in CONTROL_VALUES)
                                or (has_upload_widget(widget) and values[i] == "image")):
            i += 1
    return out
