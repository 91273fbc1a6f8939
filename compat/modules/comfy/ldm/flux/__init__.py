"""ComfyUI's `comfy.ldm.flux`: the RoPE math of Flux."""
