"""ComfyUI's `comfy.ldm.modules`: the attention functions."""
