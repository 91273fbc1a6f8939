"""The CLIP_VISION and CLIP_VISION_OUTPUT facades: ComfyUI's comfy.clip_vision objects over Sigmagraph's.

A pack receives `ClipVisionModel.of(clip_vision)`: ComfyUI's `encode_image(image, crop=True)`
and attributes (`model`, `patcher`, `load_device`, `dtype`, `image_size`, `image_mean`,
`image_std`, `model_type`, `get_sd`), and an `Output` whose fields (`last_hidden_state`,
`penultimate_hidden_states`, `image_embeds`, `mm_projected`, `image_sizes`) read as attributes
or items. What a pack hands back becomes Sigmagraph's value again, with the fields it changed.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch
from torch import Tensor

from sigmagraph.nodes.models.clip_vision import VisionOutput
from sigmagraph.nodes.models.clip_vision_model import CLIPVision

from .patcher import ModelPatcher


class Output:
    """ComfyUI's CLIP_VISION_OUTPUT: fields as attributes, also readable and writable as items."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, item: Any) -> None:
        setattr(self, key, item)

    @classmethod
    def of(cls, output: VisionOutput, image_size: int | None = None) -> "Output":
        """The Output a pack receives for Sigmagraph's vision output."""
        out = cls()
        for field in fields(output):
            out[field.name] = getattr(output, field.name)
        if image_size is not None:
            out["image_sizes"] = [torch.Size([3, image_size, image_size])] * output.last_hidden_state.shape[0]
        return out


def output_value(output: Output) -> VisionOutput:
    """Sigmagraph's vision output of an Output (fields a pack left out are None)."""
    return VisionOutput(**{field.name: getattr(output, field.name, None) for field in fields(VisionOutput)})


def model_type(clip_vision: CLIPVision) -> str:
    """ComfyUI's config `model_type` of a tower."""
    return "siglip_vision_model" if clip_vision.config.siglip else "clip_vision_model"


class ClipVisionModel:
    """ComfyUI's ClipVisionModel over a Sigmagraph CLIPVision."""

    def __init__(self, source: CLIPVision):
        config = source.config
        self.source = source
        self.model = source.tower.managed.module
        self.load_device = source.tower.device
        self.dtype = source.tower.dtype
        self.patcher = ModelPatcher(self.model, self.load_device, torch.device("cpu"))
        self.image_size = config.image_size
        self.image_mean, self.image_std = list(config.image_mean), list(config.image_std)
        self.model_type = model_type(source)
        self.config = {"model_type": self.model_type, "image_size": config.image_size,
                       "patch_size": config.patch_size, "hidden_size": config.width,
                       "num_hidden_layers": config.layers, "num_attention_heads": config.heads,
                       "intermediate_size": config.mlp_width, "projection_dim": config.projection_dim,
                       "image_mean": self.image_mean, "image_std": self.image_std}

    @classmethod
    def of(cls, source: CLIPVision) -> "ClipVisionModel":
        """The ClipVisionModel a pack receives for a Sigmagraph CLIPVision."""
        return cls(source)

    def encode_image(self, image: Tensor, crop: bool = True) -> Output:
        """The image's CLIP vision outputs (centre-cropped, or squashed to the input size when not `crop`)."""
        return Output.of(self.source.encode(image, crop), self.image_size)

    def get_sd(self) -> dict[str, Tensor]:
        """The weights, in the transformers layout."""
        return self.source.state_dict()


def clip_vision_value(model: ClipVisionModel) -> CLIPVision:
    """The Sigmagraph CLIPVision behind a ClipVisionModel."""
    return model.source

