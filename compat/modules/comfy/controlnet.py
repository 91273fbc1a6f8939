"""ComfyUI's `comfy.controlnet`: loading a ControlNet file, and the ControlNet object packs apply to conditioning."""

from sigmagraph.compat.controlnet import ControlNet, load_controlnet

ControlBase = ControlNet  # ComfyUI's base class of its control objects; packs test isinstance against it

__all__ = ["ControlBase", "ControlNet", "load_controlnet"]
