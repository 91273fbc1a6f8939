"""ComfyUI's `comfy_execution.graph_utils`: building node expansions, and links.

A node may return `{"result": (...), "expand": graph}` where graph is API-format nodes built
with GraphBuilder. Node ids are prefixed "<node id>.<call index>.<graph index>." so expansions of
different nodes and calls never collide; the running node's prefix comes from compat.state.
`ExecutionBlocker` and `is_link` are the engine's (sigmagraph.engine.expansion), which runs expansions.
"""

from __future__ import annotations

from typing import Any

from sigmagraph.compat import state
from sigmagraph.engine.expansion import ExecutionBlocker, is_link

__all__ = ["ExecutionBlocker", "GraphBuilder", "Node", "add_graph_prefix", "is_link"]


class GraphBuilder:
    """Builds the API-format graph of a node expansion; `node(...)` adds a node, `finalize()` gives the graph."""

    def __init__(self, prefix: str | None = None):
        self.prefix = GraphBuilder.alloc_prefix() if prefix is None else prefix
        self.nodes: dict[str, Node] = {}
        self.id_gen = 1

    @classmethod
    def set_default_prefix(cls, prefix_root: str, call_index: int, graph_index: int = 0) -> None:
        state.graph_prefix.set((prefix_root, call_index, graph_index))

    @classmethod
    def alloc_prefix(cls, root: str | None = None, call_index: int | None = None, graph_index: int | None = None
                     ) -> str:
        """A new prefix "root.call.graph."; later allocations of the same node call get the next graph index."""
        default_root, default_call, default_graph = state.graph_prefix.get()
        root = default_root if root is None else root
        call_index = default_call if call_index is None else call_index
        graph_index = default_graph if graph_index is None else graph_index
        state.graph_prefix.set((default_root, default_call, default_graph + 1))
        return f"{root}.{call_index}.{graph_index}."

    def node(self, class_type: str, id: str | None = None, **kwargs: Any) -> "Node":  # noqa: A002 - ComfyUI's name
        """The node of that id (prefixed), created with these inputs if new; ids default to 1, 2, 3..."""
        if id is None:
            id = str(self.id_gen)  # noqa: A001
            self.id_gen += 1
        id = self.prefix + id  # noqa: A001
        if id not in self.nodes:
            self.nodes[id] = Node(id, class_type, kwargs)
        return self.nodes[id]

    def lookup_node(self, id: str) -> "Node | None":  # noqa: A002
        return self.nodes.get(self.prefix + id)

    def finalize(self) -> dict[str, dict[str, Any]]:
        """The graph in API format, by prefixed node id."""
        return {node_id: node.serialize() for node_id, node in self.nodes.items()}

    def replace_node_output(self, node_id: str, index: int, new_value: Any) -> None:
        """Points every input linked to that output at new_value instead (None removes those inputs)."""
        source = self.prefix + node_id
        for node in self.nodes.values():
            for key, value in list(node.inputs.items()):
                if is_link(value) and value[0] == source and value[1] == index:
                    node.set_input(key, new_value)

    def remove_node(self, id: str) -> None:  # noqa: A002
        del self.nodes[self.prefix + id]


class Node:
    """One node of a GraphBuilder graph."""

    def __init__(self, id: str, class_type: str, inputs: dict[str, Any]):  # noqa: A002
        self.id = id
        self.class_type = class_type
        self.inputs = inputs
        self.override_display_id: str | None = None

    def out(self, index: int) -> list:
        """A link to this node's output `index`."""
        return [self.id, index]

    def set_input(self, key: str, value: Any) -> None:
        """Sets an input (None removes it)."""
        if value is None:
            self.inputs.pop(key, None)
        else:
            self.inputs[key] = value

    def get_input(self, key: str) -> Any:
        return self.inputs.get(key)

    def set_override_display_id(self, override_display_id: str) -> None:
        self.override_display_id = override_display_id

    def serialize(self) -> dict[str, Any]:
        serialized: dict[str, Any] = {"class_type": self.class_type, "inputs": self.inputs}
        if self.override_display_id is not None:
            serialized["override_display_id"] = self.override_display_id
        return serialized


def add_graph_prefix(graph: dict[str, dict[str, Any]], outputs: Any, prefix: str) -> tuple[dict, tuple]:
    """The graph and its outputs with every node id (and link) prefixed, so copies do not collide."""
    def prefixed(value: Any) -> Any:
        return [prefix + value[0], value[1]] if is_link(value) else value

    new_graph = {prefix + node_id: {"class_type": node["class_type"],
                                    "inputs": {name: prefixed(value) for name, value in node.get("inputs", {}).items()}}
                 for node_id, node in graph.items()}
    return new_graph, tuple(prefixed(output) for output in outputs)
