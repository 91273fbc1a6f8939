"""ComfyUI's `comfy_extras` package: the modules of its extra core nodes that Sigmagraph has."""
