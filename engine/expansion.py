"""Graphs that grow while they run: node expansion, execution blockers, and the prompt that tracks both.

A node may return an expansion, `NodeOutput(expand=graph, result=...)` (ComfyUI's `{"expand":
graph, "result": ...}`): `graph` holds API-format nodes keyed by ids unique in the run (ComfyUI's
GraphBuilder prefixes them with "<expanding node id>.<call index>.<graph index>."), and `result`
holds, per output, a value or a link `[node id, output index]` into the graph. The new nodes join
the run and are cached like any node; the expanding node's outputs become the linked outputs.

An `ExecutionBlocker` returned as an output value stops every node that receives it: with a
message, the first node it reaches fails with that message once the rest of the run is done;
with None, its consumers are skipped silently.
"""

from __future__ import annotations

from typing import Any

from .workflow import is_link

__all__ = ["DependencyCycleError", "DynamicPrompt", "ExecutionBlocker", "NodeNotFoundError", "is_link"]


class ExecutionBlocker:
    """An output value that blocks the nodes receiving it (ComfyUI's class of the same name)."""

    def __init__(self, message: str | None):
        self.message = message

    def __repr__(self) -> str:
        return f"ExecutionBlocker({self.message!r})"


class NodeNotFoundError(LookupError):
    """A node id that is neither in the prompt nor added by an expansion."""


class DependencyCycleError(RuntimeError):
    """Nodes added by expansions that wait for each other."""


class DynamicPrompt:
    """The prompt being run plus the nodes expansions added to it (ComfyUI's DynamicPrompt, for packs).

    Every added node remembers its parent (the node whose expansion added it) and the node the
    front end shows for it (`override_display_id`, else the parent).
    """

    def __init__(self, original_prompt: dict[str, Any]):
        self.original_prompt = original_prompt
        self.ephemeral_prompt: dict[str, dict[str, Any]] = {}
        self.ephemeral_parents: dict[str, str] = {}
        self.ephemeral_display: dict[str, str] = {}

    def get_node(self, node_id: str) -> dict[str, Any]:
        """The API-format node `{class_type, inputs, ...}` of that id."""
        for nodes in (self.ephemeral_prompt, self.original_prompt):
            if node_id in nodes:
                return nodes[node_id]
        raise NodeNotFoundError(f"node {node_id} is not in the prompt")

    def has_node(self, node_id: str) -> bool:
        return node_id in self.ephemeral_prompt or node_id in self.original_prompt

    def add_ephemeral_node(self, node_id: str, node_info: dict[str, Any], parent_id: str, display_id: str) -> None:
        """Adds a node of an expansion of `parent_id`."""
        self.ephemeral_prompt[node_id] = node_info
        self.ephemeral_parents[node_id] = parent_id
        self.ephemeral_display[node_id] = display_id

    def get_real_node_id(self, node_id: str) -> str:
        """The node of the original prompt whose expansions (maybe nested) added this one."""
        while node_id in self.ephemeral_parents:
            node_id = self.ephemeral_parents[node_id]
        return node_id

    def get_parent_node_id(self, node_id: str) -> str | None:
        return self.ephemeral_parents.get(node_id)

    def get_display_node_id(self, node_id: str) -> str:
        """The node the front end shows this one as."""
        while node_id in self.ephemeral_display and self.ephemeral_display[node_id] != node_id:
            node_id = self.ephemeral_display[node_id]
        return node_id

    def all_node_ids(self) -> set[str]:
        return set(self.original_prompt) | set(self.ephemeral_prompt)

    def get_original_prompt(self) -> dict[str, Any]:
        return self.original_prompt
