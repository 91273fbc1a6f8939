"""ComfyUI's `comfy_execution` package (graph expansion helpers)."""
