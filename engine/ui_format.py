"""ComfyUI's UI (litegraph) format, converted to the API format with the node catalogue.

As ComfyUI's front end does (graphToPrompt): subgraph instances and group nodes are first flattened
into one graph whose inner node ids are paths such as "12:5" (subgraphs.py); UI node ids become API
node ids; `widgets_values` are named with the node's spec (litegraph.py); inputs converted to
sockets take their link; Reroute nodes are followed; PrimitiveNode values become literals; muted
nodes (mode 2) are dropped and so is what they feed; a bypassed node (mode 4) passes one of its
inputs through, chosen as ComfyUI does (the same slot, else the first input of the wanted type).
Notes, reroutes, primitives, muted and bypassed nodes never reach the API document.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .litegraph import BYPASSED, MUTED, UI_ONLY_TYPES, UiNode, UiWorkflow, named_widget_values
from .registry import Registry
from .subgraphs import flatten
from .workflow import WorkflowError


def _connects(a: Any, b: Any) -> bool:
    """Litegraph's isValidConnection: equal types, a wildcard, or comma-separated lists that share one."""
    if a in ("", "*", 0, None) or b in ("", "*", 0, None) or a == b:
        return True
    return bool(set(str(a).lower().split(",")) & set(str(b).lower().split(",")))


def _bypass_input(node: UiNode, slot: int, wanted: Any) -> int | None:
    """The input a bypassed node passes to its output `slot` for a consumer of type `wanted`."""
    inputs = node.inputs
    if not inputs:
        return None
    if wanted in ("*", ""):
        return slot if slot < len(inputs) else 0
    out_type = node.outputs[slot].type if slot < len(node.outputs) else wanted
    if slot < len(inputs) and _connects(inputs[slot].type, out_type) and _connects(inputs[slot].type, wanted):
        return slot
    exact = next((i for i, s in enumerate(inputs) if s.type == wanted), None)
    if exact is not None:
        return exact
    return next((i for i, s in enumerate(inputs) if _connects(s.type, out_type) and _connects(s.type, wanted)), None)


class _Converter:
    def __init__(self, graph: UiWorkflow, registry: Registry):
        self.registry = registry
        self.nodes = {str(n.id): n for n in graph.nodes}
        self.links = {link.id: link for link in graph.links}

    def source(self, link_id: int | None, wanted: Any, seen: frozenset = frozenset()) -> Any:
        """What a link carries to an input of type `wanted` once bypasses, Reroutes and primitives are resolved.

        Returns [node id, slot] for a real output, ("literal", value) for a PrimitiveNode, or None.
        """
        link = self.links.get(link_id) if link_id is not None else None
        if link is None or link_id in seen:
            return None
        seen = seen | {link_id}
        origin = self.nodes.get(str(link.origin_id))
        if origin is None or origin.mode == MUTED:
            return None
        if origin.mode == BYPASSED:
            index = _bypass_input(origin, link.origin_slot, wanted)
            return self.source(origin.inputs[index].link, wanted, seen) if index is not None else None
        if origin.type == "Reroute":
            return self.source(origin.inputs[0].link if origin.inputs else None, wanted, seen)
        if origin.type == "PrimitiveNode":
            return ("literal", (origin.widgets_values or [None])[0])
        return [str(origin.id), link.origin_slot]

    def convert_node(self, node: UiNode) -> dict[str, Any]:
        spec = self.registry.nodes.get(node.type)
        inputs: dict[str, Any] = named_widget_values(node, spec)
        for slot in node.inputs:
            name = (slot.widget or {}).get("name", slot.name)
            resolved = self.source(slot.link, slot.type)
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
        ui = UiWorkflow.model_validate(document)
    except ValidationError as e:
        first = e.errors()[0]
        raise WorkflowError(f"not a valid ComfyUI UI workflow: {'.'.join(map(str, first['loc']))}: "
                            f"{first['msg']}") from None
    graph = flatten(ui, registry)
    converter = _Converter(graph, registry)
    return {str(n.id): converter.convert_node(n) for n in graph.nodes
            if n.mode not in (MUTED, BYPASSED) and n.type not in UI_ONLY_TYPES}
