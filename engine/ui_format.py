"""ComfyUI's UI (litegraph) format, converted to the API format with the node catalogue.

As ComfyUI's front end does: UI node ids become API node ids; `widgets_values` are read
positionally over the node's widget inputs (required, then optional), skipping the extra value
of the seed "control after generate" widget and of the image-upload button; inputs converted to
sockets take their link; Reroute nodes are followed; PrimitiveNode values become literals;
muted nodes (mode 2) are dropped; bypassed nodes (mode 4) pass their matching-type input through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .registry import Registry
from .spec import ComboInput, IntInput, NodeSpec, SocketInput
from .workflow import WorkflowError

MUTED, BYPASSED = 2, 4
UI_ONLY_TYPES = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}


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


class UiLink(BaseModel):
    id: int
    origin_id: int | str
    origin_slot: int
    target_id: int | str
    target_slot: int
    type: Any = "*"


class UiWorkflow(BaseModel):
    model_config = ConfigDict(extra="allow")
    nodes: list[UiNode]
    links: list[UiLink]

    @classmethod
    def parse(cls, document: dict[str, Any]) -> "UiWorkflow":
        """Accepts links as litegraph lists [id, origin, slot, target, slot, type] (v0.4) or objects (v1)."""
        links = [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), link))
                 if isinstance(link, list) else link for link in document.get("links") or []]
        if (document.get("definitions") or {}).get("subgraphs"):
            raise WorkflowError("this UI workflow uses subgraphs, which cannot be converted yet; "
                                "export it in API format from ComfyUI instead")
        return cls.model_validate({**document, "links": links})


def _widget_inputs(spec: NodeSpec) -> list[Any]:
    required = [i for i in spec.inputs if not i.optional]
    optional = [i for i in spec.inputs if i.optional]
    return [i for i in required + optional
            if not isinstance(i, SocketInput) and not getattr(i, "force_input", None)]


def _widget_values(node: UiNode, spec: NodeSpec) -> dict[str, Any]:
    if isinstance(node.widgets_values, dict):
        return dict(node.widgets_values)
    values, out = list(node.widgets_values or []), {}
    i = 0
    for widget in _widget_inputs(spec):
        if i >= len(values):
            break
        out[widget.name] = values[i]
        i += 1
        has_control = isinstance(widget, IntInput) and (widget.control_after_generate
                                                        or widget.name in ("seed", "noise_seed"))
        has_upload = isinstance(widget, ComboInput) and widget.image_upload
        if i < len(values) and ((has_control and values[i] in CONTROL_VALUES) or (has_upload and values[i] == "image")):
            i += 1
    return out


class _Converter:
    def __init__(self, ui: UiWorkflow, registry: Registry):
        self.registry = registry
        self.nodes = {str(n.id): n for n in ui.nodes}
        self.links = {link.id: link for link in ui.links}

    def source(self, link_id: int | None, seen: frozenset = frozenset()) -> Any:
        """What a link carries once Reroutes, bypassed nodes and primitives are resolved.

        Returns [node id, slot] for a real output, ("literal", value) for a PrimitiveNode, or None.
        """
        link = self.links.get(link_id) if link_id is not None else None
        if link is None or link_id in seen:
            return None
        seen = seen | {link_id}
        origin = self.nodes.get(str(link.origin_id))
        if origin is None or origin.mode == MUTED:
            return None
        if origin.type == "Reroute":
            return self.source(origin.inputs[0].link if origin.inputs else None, seen)
        if origin.type == "PrimitiveNode":
            return ("literal", (origin.widgets_values or [None])[0])
        if origin.mode == BYPASSED:
            out_type = origin.outputs[link.origin_slot].type if link.origin_slot < len(origin.outputs) else link.type
            match = next((i for i in origin.inputs if i.type == out_type and i.link is not None), None)
            return self.source(match.link, seen) if match else None
        return [str(origin.id), link.origin_slot]

    def convert_node(self, node: UiNode) -> dict[str, Any]:
        spec = self.registry.nodes.get(node.type)
        inputs: dict[str, Any] = _widget_values(node, spec) if spec else {}
        for slot in node.inputs:
            name = (slot.widget or {}).get("name", slot.name)
            resolved = self.source(slot.link)
            if isinstance(resolved, tuple):
                inputs[name] = resolved[1]
            elif resolved is not None:
                inputs[name] = resolved
            elif slot.link is not None:
                inputs.pop(name, None)  # linked to something muted: the input is missing, as in ComfyUI
        meta: dict[str, Any] = {"title": node.title or (spec.display_name if spec else node.type)}
        if node.pos is not None:
            meta["pos"] = list(node.pos.values())[:2] if isinstance(node.pos, dict) else list(node.pos[:2])
        return {"class_type": node.type, "inputs": inputs, "_meta": meta}


def ui_to_api(document: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """Converts a ComfyUI UI-format workflow into the API format (raises WorkflowError)."""
    try:
        ui = UiWorkflow.parse(document)
    except ValidationError as e:
        first = e.errors()[0]
        raise WorkflowError(f"not a valid ComfyUI UI workflow: {'.'.join(map(str, first['loc']))}: "
                            f"{first['msg']}") from None
    converter = _Converter(ui, registry)
    return {str(n.id): converter.convert_node(n) for n in ui.nodes
            if n.mode not in (MUTED, BYPASSED) and n.type not in UI_ONLY_TYPES}
