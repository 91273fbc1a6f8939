"""ComfyUI's `comfy.taesd`: the Tiny AutoEncoder (madebyollin's TAESD) building blocks."""
