"""The CLIP_VISION value: a vision tower (clip_vision.py) on a managed device, encoding IMAGEs as ComfyUI does.

Weights are kept in the text encoders' dtype (float32 on the CPU, float16 on CUDA); outputs come
back float32 on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor

from .checkpoint import CheckpointError, load_weights, open_checkpoint
from .clip_vision import (CLIPVisionConfig, CLIPVisionModel, VisionOutput, canonical_state_dict, config_from_shapes,
                          is_vision_tower, preprocess)
from .devices import weight_dtype
from .manager import ModuleHandle, manager_for
from .module_init import meta_module


@dataclass(frozen=True, eq=False)
class CLIPVision:
    """A vision tower: `encode(image)` gives ComfyUI's CLIP_VISION_OUTPUT fields."""

    tower: ModuleHandle
    config: CLIPVisionConfig

    @torch.no_grad()
    def encode(self, image: Tensor, crop: bool = True) -> VisionOutput:
        """CLIPVisionEncode: IMAGE [B, H, W, C] (centre-cropped, or squashed when not `crop`) to the tower's outputs."""
        model = self.tower.use()
        pixels = preprocess(image.to(self.tower.device).float(), self.config, crop)
        out = model(pixels.to(self.tower.dtype))
        return VisionOutput(**{field.name: None if (value := getattr(out, field.name)) is None else value.float().cpu()
                               for field in fields(VisionOutput)})

    def state_dict(self) -> dict[str, Tensor]:
        """The weights, in the transformers layout."""
        return self.tower.managed.module.state_dict()


def clip_vision_from_state_dict(state_dict: Mapping[str, Tensor], name: str, device: torch.device,
                                dtype: torch.dtype | None = None) -> CLIPVision:
    """The CLIP_VISION of a state dict (transformers' or OpenCLIP's `visual.*` layout), computing on `device`."""
    weights = canonical_state_dict(state_dict)
    if not is_vision_tower(weights):
        keys = list(state_dict)
        raise CheckpointError(f"{name}: no CLIP vision model found (neither vision_model.* nor visual.* keys); "
                              f"the file holds {len(keys)} tensors, e.g. {', '.join(keys[:3])}")
    try:
        config = config_from_shapes(weights)
    except ValueError as error:
        raise CheckpointError(f"{name}: {error}") from None
    module = meta_module(CLIPVisionModel, config)
    load_weights(module, weights.items(), weight_dtype(device, dtype), f"{name} (CLIP vision)")
    return CLIPVision(ModuleHandle(manager_for(device).register(module)), config)


def load_clip_vision(path: Path, name: str, device: torch.device, dtype: torch.dtype | None = None) -> CLIPVision:
    """CLIPVisionLoader: the vision tower of a file."""
    with open_checkpoint(path, name) as checkpoint:
        return clip_vision_from_state_dict(dict(checkpoint.items()), name, device, dtype)
