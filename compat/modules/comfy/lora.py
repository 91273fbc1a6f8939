"""ComfyUI's `comfy.lora`: key maps from LoRA layer names to model keys, and a LoRA's layers by key.

`load_lora`'s values are Sigmagraph's LoRA layers, which ModelPatcher.add_patches and
CLIP.add_patches take; see sigmagraph.compat.loras.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from sigmagraph.compat import loras as _loras


def model_lora_keys_unet(model: Any, key_map: dict[str, str] | None = None) -> dict[str, str]:
    """key_map with the LoRA layer names of a model object's UNet."""
    return _loras.unet_keys(model, key_map)


def model_lora_keys_clip(model: Any, key_map: dict[str, str] | None = None) -> dict[str, str]:
    """key_map with the LoRA layer names of a CLIP's cond_stage_model."""
    return _loras.text_encoder_keys(model, key_map)


def load_lora(lora: dict[str, Tensor], to_load: dict[str, str], log_missing: bool = True) -> dict[str, Any]:
    """The LoRA's layers by model key, for add_patches."""
    return _loras.layers_by_key(lora, to_load, log_missing)
