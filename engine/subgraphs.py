"""Subgraphs and legacy group nodes of a UI-format workflow, flattened into one graph of plain nodes.

As ComfyUI's front end does when it queues a prompt (graphToPrompt over ExecutableNodeDTOs): each
instance of a subgraph definition is replaced by the definition's nodes, whose ids become the path
of instance ids joined by ':' ("12:5"; nested, "12:7:3"). A link into an instance input continues
to the inner nodes fed by that subgraph input; a link from an instance output starts at the inner
node feeding that subgraph output. An instance input that no link feeds gives its promoted widget's
value, which is the instance's own value when it has one, else the value of the first inner widget
the input feeds; it enters the flat graph as a PrimitiveNode, so reroutes, bypassed nodes and
literals behave inside a subgraph as outside. A muted or bypassed instance is not expanded: it stays
one node, muted or bypassed as a whole.

The instance's `widgets_values` hold one value per promoted input, in the order of the definition's
inputs (skipping a "control after generate" value when the list has them); files of the proxy-widget
era list instead one value per `properties.proxyWidgets` entry [inner node id, widget name], which
may also name a widget that no subgraph input feeds. Legacy group nodes (`extra.groupNodes`, node
types `workflow>NAME` or `workflow/NAME`) are read as subgraph definitions whose inner node ids are
their indices ("<instance id>:<index>"), with inputs, outputs and widgets laid out as ComfyUI's
GroupNodeConfig does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from .litegraph import (BYPASSED, MUTED, GroupNodeData, SubgraphDefinition, SubgraphSlot, UiLink, UiNode, UiSlot,
                        UiWorkflow, has_control_widget, has_upload_widget, named_widget_values, widget_inputs)
from .registry import Registry
from .spec import SocketInput
from .workflow import WorkflowError

INPUT_NODE, OUTPUT_NODE = -10, -20
GROUP_NODE_PREFIXES = ("workflow>", "workflow/")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_ABSENT = object()  # no value (JSON null is a value)


@dataclass
class _Scope:
    """One graph being flattened: the root graph, or one instance of a subgraph definition."""

    path: tuple[str, ...]  # the ids of the instances from the root graph down to this graph
    nodes: dict[str, UiNode]
    links: dict[int, UiLink]
    definition: SubgraphDefinition | None = None
    instance: UiNode | None = None
    parent: _Scope | None = None
    bound: dict[int, UiSlot] = field(default_factory=dict)  # definition input index -> the instance's slot
    values: dict[int, Any] = field(default_factory=dict)  # definition input index -> promoted widget value
    input_overrides: dict[str, Any] = field(default_factory=dict)  # input name -> value set by the outer instance
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # inner node id -> widget values set outside
    children: dict[str, _Scope] = field(default_factory=dict)  # expanded instance id -> its graph

    def flat_id(self, node_id: int | str) -> str:
        return ":".join((*self.path, str(node_id)))

    def error(self, problem: str) -> WorkflowError:
        """A WorkflowError naming the instance node and its definition."""
        if self.definition is None:
            return WorkflowError(f"the workflow's graph: {problem}")
        return WorkflowError(f"node {':'.join(self.path)} (subgraph {self.definition.name!r}): {problem}")


def flatten(ui: UiWorkflow, registry: Registry) -> UiWorkflow:
    """The workflow as one graph without subgraph instances or group nodes (raises WorkflowError)."""
    return _Flattener(ui, registry).run()


def _is(node_id: int | str, io_node: int) -> bool:
    return str(node_id) == str(io_node)


def _bind_inputs(instance: UiNode, definition: SubgraphDefinition) -> dict[int, UiSlot]:
    """The instance's input slot of each definition input, matched by name and type, then by name."""
    free, bound = list(range(len(definition.inputs))), {}
    for slot in instance.inputs:
        k = next((k for k in free if definition.inputs[k].name == slot.name
                  and str(definition.inputs[k].type) == str(slot.type)), None)
        if k is None:
            k = next((k for k in free if definition.inputs[k].name == slot.name), None)
        if k is not None:
            bound[k] = slot
            free.remove(k)
    return bound


def _proxy_entries(instance: UiNode) -> list[tuple[str, str]] | None:
    """The (inner node id, widget name) pairs of a proxy-widget era instance, or None."""
    proxies = instance.properties.get("proxyWidgets")
    if isinstance(proxies, str):  # the earliest files store it as JSON text
        try:
            proxies = json.loads(proxies)
        except ValueError:
            return None  # as ComfyUI, which reads an unreadable list as no proxies
    if not isinstance(proxies, list) or not proxies:
        return None
    return [(str(p[0]), str(p[1])) if isinstance(p, list) and len(p) >= 2 else ("", "") for p in proxies]


class _Flattener:
    def __init__(self, ui: UiWorkflow, registry: Registry):
        self.ui = ui
        self.registry = registry
        self.definitions = {d.id: d for d in ui.definitions.subgraphs}
        self.group_layouts: dict[str, list[tuple[str, str, int]]] = {}  # group definition id -> its widgets
        self.nodes: list[UiNode] = []
        self.links: list[UiLink] = []
        self.literals: dict[tuple[tuple[str, ...], int], str] = {}

    def run(self) -> UiWorkflow:
        root = self.scope((), self.ui.nodes, self.ui.links, stack=())
        for scope in self.preorder(root):
            if scope.instance is not None:
                self.assign_values(scope)
        self.emit(root)
        return UiWorkflow(nodes=self.nodes, links=self.links)

    def preorder(self, scope: _Scope) -> Iterator[_Scope]:
        yield scope
        for child in scope.children.values():
            yield from self.preorder(child)

    # --- the tree of expanded instances -------------------------------------------------------------

    def scope(self, path: tuple[str, ...], nodes: list[UiNode], links: list[UiLink], stack: tuple[str, ...],
              definition: SubgraphDefinition | None = None, instance: UiNode | None = None,
              parent: _Scope | None = None) -> _Scope:
        scope = _Scope(path, {str(n.id): n for n in nodes}, {link.id: link for link in links}, definition,
                       instance, parent)
        if definition is not None and instance is not None:
            scope.bound = self.bind(instance, definition)
        for node in nodes:
            inner = self.definition_of(scope, node)
            if inner is None or node.mode in (MUTED, BYPASSED):
                continue
            child_path = (*path, str(node.id))
            if inner.id in stack:
                raise WorkflowError(f"node {':'.join(child_path)} (subgraph {inner.name!r}): "
                                    "the subgraph contains an instance of itself")
            scope.children[str(node.id)] = self.scope(child_path, inner.nodes, inner.links, (*stack, inner.id),
                                                      inner, node, scope)
        return scope

    def bind(self, instance: UiNode, definition: SubgraphDefinition) -> dict[int, UiSlot]:
        """The instance's input slot of each definition input (a group node's by position)."""
        if definition.id in self.group_layouts:
            return dict(enumerate(instance.inputs[:len(definition.inputs)]))
        return _bind_inputs(instance, definition)

    def definition_of(self, scope: _Scope, node: UiNode) -> SubgraphDefinition | None:
        """The subgraph definition a node is an instance of (None for other nodes)."""
        if node.type in self.definitions:
            return self.definitions[node.type]
        if _UUID.fullmatch(node.type):
            raise WorkflowError(f"node {scope.flat_id(node.id)} is an instance of subgraph {node.type}, "
                                "which the workflow does not define (definitions.subgraphs)")
        if node.type.startswith(GROUP_NODE_PREFIXES):
            name = node.type[len("workflow>"):]
            if name not in self.ui.extra.groupNodes:
                raise WorkflowError(f"node {scope.flat_id(node.id)} is an instance of group node {name!r}, "
                                    "which the workflow does not define (extra.groupNodes)")
            return self.group_definition(name, self.ui.extra.groupNodes[name])
        return None

    # --- promoted widget values ------------------------------------------------------------------

    def assign_values(self, scope: _Scope) -> None:
        """The values an instance gives its promoted inputs and, through proxies, its inner widgets."""
        instance, definition = scope.instance, scope.definition
        values = instance.widgets_values if isinstance(instance.widgets_values, list) else []
        layout = self.group_layouts.get(definition.id)
        proxies = _proxy_entries(instance)
        if layout is not None:
            position = 0
            for node_id, name, extra in layout:
                if position < len(values) and values[position] is not None:
                    self.apply_proxy(scope, node_id, name, values[position])
                position += 1 + extra
        elif proxies is not None:
            for (node_id, name), value in zip(proxies, values):
                if value is not None:
                    self.apply_proxy(scope, node_id, name, value)
        else:
            promoted = [k for k in range(len(definition.inputs)) if self.widget_target(scope, k)]
            with_controls = len(values) > len(promoted)
            position = 0
            for k in promoted:
                if position < len(values) and values[position] is not None:
                    scope.values[k] = values[position]
                position += 1 + (with_controls and self.has_control(scope, k))
        for name, value in scope.input_overrides.items():
            k = next((k for k, slot in enumerate(definition.inputs) if slot.name == name), None)
            if k is not None:
                scope.values[k] = value

    def widget_target(self, scope: _Scope, k: int) -> tuple[UiNode, UiSlot] | None:
        """The first inner widget input fed by definition input k: the widget it promotes."""
        for link_id in scope.definition.inputs[k].linkIds:
            link = scope.links.get(link_id)
            target = scope.nodes.get(str(link.target_id)) if link else None
            slot = next((s for s in target.inputs if s.link == link_id), None) if target else None
            if slot is not None and slot.widget:
                return target, slot
        return None

    def has_control(self, scope: _Scope, k: int) -> bool:
        target, slot = self.widget_target(scope, k)
        spec = self.registry.nodes.get(target.type)
        widget = spec.input(slot.widget.get("name", slot.name)) if spec else None
        return widget is not None and has_control_widget(widget)

    def apply_proxy(self, scope: _Scope, node_id: str, name: str, value: Any) -> None:
        """Sets one proxy widget: a promoted input, a nested instance's input, or an inner widget."""
        inputs = scope.definition.inputs
        if node_id == "-1":
            k = next((k for k, slot in enumerate(inputs) if slot.name == name), None)
        else:
            k = next((k for k in range(len(inputs)) if (target := self.widget_target(scope, k))
                      and str(target[0].id) == node_id and target[1].widget.get("name") == name), None)
        node = scope.nodes.get(node_id)
        if k is not None:
            scope.values[k] = value
        elif node_id in scope.children:
            scope.children[node_id].input_overrides[name] = value
        elif node is not None:
            scope.overrides.setdefault(node_id, {})["value" if node.type == "PrimitiveNode" else name] = value

    def promoted_value(self, scope: _Scope, k: int) -> Any:
        """Definition input k's widget value: the instance's, else that of the first inner widget it feeds."""
        if k in scope.values:
            return scope.values[k]
        found = self.widget_target(scope, k)
        if found is None:
            return _ABSENT
        target, slot = found
        child = scope.children.get(str(target.id))
        if child is not None:
            nested = next((j for j, s in child.bound.items() if s is slot), None)
            return self.promoted_value(child, nested) if nested is not None else _ABSENT
        values = self.widget_values(scope, target)
        return values.get(slot.widget.get("name", slot.name), _ABSENT)

    def widget_values(self, scope: _Scope, node: UiNode) -> dict[str, Any]:
        return named_widget_values(node, self.registry.nodes.get(node.type)) | scope.overrides.get(str(node.id), {})

    # --- link resolution across instance boundaries ---------------------------------------------------

    def origin(self, scope: _Scope, link: UiLink, seen: frozenset) -> tuple[str, int] | None:
        """The flat node and output slot a link of `scope` carries, or None when nothing feeds it."""
        if (scope.path, link.id) in seen:
            raise scope.error(f"link {link.id} feeds itself through the subgraph's inputs and outputs")
        seen = seen | {(scope.path, link.id)}
        if _is(link.origin_id, INPUT_NODE):
            return self.input_source(scope, link.origin_slot, seen)
        node = scope.nodes.get(str(link.origin_id))
        if node is None:
            if scope.definition is None:
                return None  # as at the top level of a plain workflow: a dangling link carries nothing
            raise scope.error(f"link {link.id} comes from node {link.origin_id}, which the subgraph does not have")
        child = scope.children.get(str(node.id))
        if child is not None:
            return self.output_source(child, link.origin_slot, seen)
        return scope.flat_id(node.id), link.origin_slot

    def input_source(self, scope: _Scope, k: int, seen: frozenset) -> tuple[str, int] | None:
        if scope.definition is None:
            return None
        if not 0 <= k < len(scope.definition.inputs):
            raise scope.error(f"a link comes from subgraph input {k}, but the subgraph has "
                              f"{len(scope.definition.inputs)} input(s)")
        slot = scope.bound.get(k)
        outer = scope.parent.links.get(slot.link) if slot is not None and slot.link is not None else None
        if outer is not None:
            return self.origin(scope.parent, outer, seen)
        value = self.promoted_value(scope, k)
        return None if value is _ABSENT else (self.literal(scope, k, value), 0)

    def output_source(self, scope: _Scope, slot: int, seen: frozenset) -> tuple[str, int] | None:
        outputs = scope.definition.outputs
        if not 0 <= slot < len(outputs):
            raise scope.error(f"a link comes from its output {slot}, but the subgraph has {len(outputs)} output(s)")
        inner = next((link for link in map(scope.links.get, outputs[slot].linkIds) if link is not None), None)
        return self.origin(scope, inner, seen) if inner is not None else None

    def literal(self, scope: _Scope, k: int, value: Any) -> str:
        """The id of a PrimitiveNode giving the value of an instance's unlinked input k."""
        key = (scope.path, k)
        if key not in self.literals:
            self.literals[key] = scope.flat_id(f"input{k}")
            self.nodes.append(UiNode(id=self.literals[key], type="PrimitiveNode", widgets_values=[value]))
        return self.literals[key]

    # --- the flat graph -----------------------------------------------------------------------------

    def emit(self, scope: _Scope) -> None:
        for node_id, node in scope.nodes.items():
            if node_id in scope.children:
                self.emit(scope.children[node_id])
            else:
                self.nodes.append(self.flat_node(scope, node))

    def flat_node(self, scope: _Scope, node: UiNode) -> UiNode:
        flat_id = scope.flat_id(node.id)
        update: dict[str, Any] = {"id": flat_id}
        slots = node.inputs
        definition = self.definition_of(scope, node)
        if definition is not None:  # a muted or bypassed instance: one node with the definition's slots
            bound = self.bind(node, definition)
            slots = [UiSlot(name=d.name, type=d.type, link=bound[k].link if k in bound else None)
                     for k, d in enumerate(definition.inputs)]
            update["outputs"] = [UiSlot(name=d.name, type=d.type) for d in definition.outputs]
        update["inputs"] = [slot.model_copy(update={"link": self.flat_link(scope, slot, flat_id, index)})
                            for index, slot in enumerate(slots)]
        overrides = scope.overrides.get(str(node.id))
        if overrides and node.type == "PrimitiveNode":
            rest = node.widgets_values[1:] if isinstance(node.widgets_values, list) else []
            update["widgets_values"] = [overrides["value"], *rest]
        elif overrides:
            update["widgets_values"] = self.widget_values(scope, node)
        return node.model_copy(update=update)

    def flat_link(self, scope: _Scope, slot: UiSlot, target_id: str, target_slot: int) -> int | None:
        link = scope.links.get(slot.link) if slot.link is not None else None
        origin = self.origin(scope, link, frozenset()) if link is not None else None
        if origin is None:
            return None
        self.links.append(UiLink(id=len(self.links) + 1, origin_id=origin[0], origin_slot=origin[1],
                                 target_id=target_id, target_slot=target_slot, type=slot.type))
        return len(self.links)

    # --- legacy group nodes ---------------------------------------------------------------------------

    def group_definition(self, name: str, data: GroupNodeData) -> SubgraphDefinition:
        """A legacy group node read as a subgraph definition (ComfyUI's GroupNodeConfig layout)."""
        definition_id = f"workflow>{name}"
        if definition_id not in self.definitions:
            definition, layout = _group_as_subgraph(definition_id, name, data, self.registry)
            self.group_layouts[definition_id] = layout
            self.definitions[definition_id] = definition
        return self.definitions[definition_id]


def _group_as_subgraph(definition_id: str, name: str, data: GroupNodeData, registry: Registry
                       ) -> tuple[SubgraphDefinition, list[tuple[str, str, int]]]:
    """The definition of a group node and its widget layout [(inner index, widget name, extra values)].

    Inputs are the inner sockets no inner link feeds (node by node), then the widgets converted to
    inputs; outputs are the inner outputs used outside or not used inside; widgets are the inner
    widgets node by node, then the converted ones (ComfyUI's GroupNodeConfig.registerType).
    """
    links_to: dict[int, set[int]] = {}
    links_from: dict[int, set[int]] = {}
    internal = [link for link in data.links if len(link) >= 4 and link[0] is not None]
    for origin, origin_slot, target, target_slot, *_ in internal:
        links_from.setdefault(origin, set()).add(origin_slot)
        links_to.setdefault(target, set()).add(target_slot)
    external = {(e[0], e[1]) for e in data.external if len(e) >= 2}
    inputs: list[tuple[int, int, Any]] = []
    converted_inputs: list[tuple[int, int, Any]] = []
    outputs: list[tuple[int, int, Any]] = []
    widgets: list[tuple[str, str, int]] = []
    converted_widgets: list[tuple[str, str, int]] = []
    for i, node in enumerate(data.nodes):
        fed, used = links_to.get(i, set()), links_from.get(i, set())
        config = data.config.get(str(i)) or {}
        if node.type == "PrimitiveNode":
            if used:  # its value widget always gets a "control after generate" companion in a group
                widgets.append((str(i), "value", 1))
            continue
        if node.type == "Reroute":
            if not (fed and used and (i, 0) not in external):
                slot_type = node.outputs[0].type if node.outputs else "*"
                inputs += [(i, 0, slot_type)] if 0 not in fed else []
                outputs += [(i, 0, slot_type)] if (i, 0) in external or 0 not in used else []
            continue
        spec = registry.nodes.get(node.type)
        if spec is None:
            raise WorkflowError(f"group node {name!r} contains node type {node.type!r}, "
                                "which no installed node pack defines")
        sockets = [s for s in spec.inputs if isinstance(s, SocketInput) or getattr(s, "force_input", None)]
        sockets = [s for s in sockets if not s.optional] + [s for s in sockets if s.optional]
        converted = {index: slot.name for index, slot in enumerate(node.inputs)
                     if slot.widget and slot.widget.get("name") == slot.name}
        slot_of = {slot.name: index for index, slot in enumerate(node.inputs)}
        for j, socket in enumerate(sockets):
            index = slot_of.get(socket.name, j)
            hidden = ((config.get("input") or {}).get(socket.name) or {}).get("visible") is False
            if index not in fed and not hidden:
                inputs.append((i, index, socket.type))
        for widget in widget_inputs(spec):
            extra = int(has_control_widget(widget)) + int(has_upload_widget(widget))
            if widget.name not in converted.values():
                widgets.append((str(i), widget.name, extra))
            elif (index := slot_of[widget.name]) not in fed:
                converted_inputs.append((i, index, widget.kind))
                converted_widgets.append((str(i), widget.name, extra))
        for o, output in enumerate(spec.outputs):
            shown = ((config.get("output") or {}).get(str(o)) or {}).get("visible")
            if shown if shown is not None else (o not in used or (i, o) in external):
                outputs.append((i, o, output.type))

    nodes = [node.model_copy(update={"id": i, "inputs": [s.model_copy(update={"link": None}) for s in node.inputs]})
             for i, node in enumerate(data.nodes)]
    links: list[UiLink] = []

    def connect(origin: int, origin_slot: int, target: int, target_slot: int, slot_type: Any) -> int:
        links.append(UiLink(id=len(links) + 1, origin_id=origin, origin_slot=origin_slot, target_id=target,
                            target_slot=target_slot, type=slot_type))
        if target >= 0 and target_slot < len(nodes[target].inputs):
            nodes[target].inputs[target_slot].link = len(links)
        return len(links)

    for origin, origin_slot, target, target_slot, *rest in internal:
        connect(origin, origin_slot, target, target_slot, rest[1] if len(rest) > 1 else "*")
    definition_inputs = [SubgraphSlot(name=str(j), type=t, linkIds=[connect(INPUT_NODE, j, i, index, t)])
                         for j, (i, index, t) in enumerate(inputs + converted_inputs)]
    definition_outputs = [SubgraphSlot(name=str(j), type=t, linkIds=[connect(i, o, OUTPUT_NODE, j, t)])
                          for j, (i, o, t) in enumerate(outputs)]
    definition = SubgraphDefinition(id=definition_id, name=name, inputs=definition_inputs,
                                    outputs=definition_outputs, nodes=nodes, links=links)
    return definition, widgets + converted_widgets
