"""ComfyUI's `comfy.ldm.lumina`: Lumina's feed-forward block."""
