"""ComfyUI's `execution`: the names packs import from it, which are the engine's."""

from sigmagraph.engine.expansion import ExecutionBlocker

__all__ = ["ExecutionBlocker"]
