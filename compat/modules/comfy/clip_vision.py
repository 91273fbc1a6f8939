"""ComfyUI's `comfy.clip_vision`: loading CLIP vision models, ClipVisionModel, Output and clip_preprocess.

Files and state dicts load with Sigmagraph's CLIP vision loader (transformers' `vision_model.*`
or OpenCLIP's `visual.*` layout, the tower's size read from the shapes) on the active Config's
device; like ComfyUI's, the loaders answer None when there is no vision tower to load.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from torch import Tensor

from sigmagraph.compat import state as _state
from sigmagraph.compat.clip_vision import ClipVisionModel, Output
from sigmagraph.nodes.models.checkpoint import open_checkpoint as _open_checkpoint
from sigmagraph.nodes.models.clip_vision import (CLIP_MEAN, CLIP_STD, OPENCLIP_PREFIX, VIT_L14, canonical_state_dict,
                                                 is_vision_tower)
from sigmagraph.nodes.models.clip_vision import preprocess as _preprocess
from sigmagraph.nodes.models.clip_vision_model import clip_vision_from_state_dict as _from_state_dict
from sigmagraph.nodes.packs.loaders import placement as _placement

__all__ = ["ClipVisionModel", "Output", "clip_preprocess", "load", "load_clipvision_from_sd"]


def clip_preprocess(image: Tensor, size: int = 224, mean: Sequence[float] = CLIP_MEAN,
                    std: Sequence[float] = CLIP_STD, crop: bool = True) -> Tensor:
    """IMAGE [B, H, W, C] as a model input [B, 3, size, size]: resized and centre-cropped (or squashed), normalised."""
    return _preprocess(image, replace(VIT_L14, image_size=size, image_mean=tuple(mean), image_std=tuple(std)), crop)


def load_clipvision_from_sd(sd: dict[str, Tensor], prefix: str = "", convert_keys: bool = False
                            ) -> ClipVisionModel | None:
    """The ClipVisionModel of a state dict, the tower under `prefix` when `convert_keys`; None if it holds none."""
    if convert_keys:
        openclip = f"{prefix}transformer.resblocks.0.attn.in_proj_weight" in sd
        renamed = OPENCLIP_PREFIX if openclip else ""
        sd = {renamed + key[len(prefix):]: value for key, value in sd.items() if key.startswith(prefix)}
    if not is_vision_tower(canonical_state_dict(sd)):
        return None
    return ClipVisionModel.of(_from_state_dict(sd, "CLIP vision state dict", *_placement(_state.config())))


def load(ckpt_path: str) -> ClipVisionModel | None:
    """The ClipVisionModel of a file (read as plain tensors only); None if it holds no vision tower."""
    path = Path(ckpt_path)
    with _open_checkpoint(path) as checkpoint:
        return load_clipvision_from_sd(dict(checkpoint.items()))
