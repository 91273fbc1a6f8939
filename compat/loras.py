"""LoRA state dicts for ComfyUI code: comfy.lora's key maps and load_lora over Sigmagraph's LoRA reader.

ComfyUI names a model's weights by their keys in its model objects: `diffusion_model.<param>`
for the UNet, `<slot>.transformer.<param>` for a text encoder (clip_l.transformer.text_model...),
which are the keys of models.BaseModel and clip_vae.TextEncoders here. A key map sends each LoRA
layer name (kohya, diffusers, PEFT: Sigmagraph's aliases) to such a key, and load_lora gives the
layers (Sigmagraph's LoraLayer) by key, ready for ModelPatcher.add_patches.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor

from sigmagraph.nodes.models.checkpoint import Checkpoint
from sigmagraph.nodes.models.lora import LoraLayer, read_lora, text_encoder_aliases, unet_aliases

from .patcher import UNET_PREFIX

log = logging.getLogger("sigmagraph.compat")


class StateDict(Checkpoint):
    """A state dict already in memory (a pack's load_torch_file) read as a Checkpoint."""

    def __init__(self, tensors: dict[str, Tensor], name: str = "LoRA"):
        super().__init__(name, {})
        self.tensors = tensors

    def keys(self) -> list[str]:
        return list(self.tensors)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.tensors[key].shape)

    def view(self, key: str) -> Tensor:
        return self.tensors[key]

    def __contains__(self, key: str) -> bool:
        return key in self.tensors


def unet_keys(model: Any, key_map: dict[str, str] | None = None) -> dict[str, str]:
    """key_map with every LoRA layer name of the model object's UNet -> its weight's key."""
    key_map = {} if key_map is None else key_map
    unet = getattr(model, "diffusion_model", None)
    if unet is not None:
        key_map.update({alias: UNET_PREFIX + param for alias, param in unet_aliases(unet).items()})
    return key_map


def text_encoder_keys(model: Any, key_map: dict[str, str] | None = None) -> dict[str, str]:
    """key_map with every LoRA layer name of a CLIP's text encoders (its cond_stage_model) -> its weight's key."""
    key_map = {} if key_map is None else key_map
    for part in model.source.parts:
        prefix = f"{part.slot.name}.transformer."
        key_map.update({alias: prefix + param for alias, param
                        in text_encoder_aliases(part.managed.module, part.slot.lora_prefixes).items()})
    return key_map


def layers_by_key(lora: dict[str, Tensor], to_load: dict[str, str], log_missing: bool = True) -> dict[str, LoraLayer]:
    """The LoRA's layers by model key (`to_load`: layer name -> key); layers the map lacks are logged."""
    layers = read_lora(StateDict(lora))
    missing = [name for name in layers if name not in to_load]
    if missing and log_missing:
        log.warning("LoRA: %d layer(s) fit nothing in this model, e.g. %s", len(missing), missing[0])
    return {to_load[name]: layer for name, layer in layers.items() if name in to_load}
