"""Old ComfyUI's `comfy_extras.chainner_models`: the upscale-model loader packs written for it still import."""
