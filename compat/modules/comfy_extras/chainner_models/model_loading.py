"""Old ComfyUI's `comfy_extras.chainner_models.model_loading`: `load_state_dict`, an upscale model from its weights.

It returns spandrel's descriptor (what ComfyUI's UPSCALE_MODEL is today) rather than the bare
network old ComfyUI did: packs call it, read `.scale` and move it with `.to`/`.cpu`/`.eval` alike.
ESRGAN / Real-ESRGAN RRDBNet and Real-ESRGAN compact models load; other architectures raise an
error listing the state dict's keys.
"""

from sigmagraph.compat.upscale_model import load_state_dict

__all__ = ["load_state_dict"]
