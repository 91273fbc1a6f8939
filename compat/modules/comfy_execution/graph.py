"""ComfyUI's `comfy_execution.graph`: the names packs import from it, which are the engine's."""

from sigmagraph.engine.expansion import (DependencyCycleError, DynamicPrompt, ExecutionBlocker, NodeNotFoundError,
                                         is_link)

__all__ = ["DependencyCycleError", "DynamicPrompt", "ExecutionBlocker", "NodeNotFoundError", "is_link"]
