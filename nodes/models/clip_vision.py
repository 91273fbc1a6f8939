"""CLIP vision towers: OpenAI ViT-L/14, OpenCLIP ViT-H/14 and ViT-bigG/14, and SigLIP (so400m), as ComfyUI runs them.

The transformer blocks are the text encoder's (clip.py), with full instead of causal attention.
A CLIP tower embeds 14x14 patches (no bias) after a class token, adds learned positions, applies
a pre-LayerNorm, runs the blocks, and pools the class token through the post-LayerNorm and the
visual projection (`image_embeds`). SigLIP's has no class token (patch embedding with bias), no
pre-LayerNorm, and puts every token through the post-LayerNorm without projection: its
`image_embeds` are all the tokens, as ComfyUI's (which also skips SigLIP's attention-pooling head).
LLaVA's ViT-L/14-336 files carry a two-layer projector into the language model (`mm_projected`).

Parameters use the transformers layout (`vision_model.embeddings.patch_embedding.weight`,
`vision_model.encoder.layers.N...`, `visual_projection.weight`); `canonical_entries` reads
OpenCLIP's `visual.*` layout into it. `config_from_shapes` reads the size of a stored tower;
what shapes cannot tell (heads, activation, normalisation) comes from the preset of its width.

`preprocess` is ComfyUI's clip_preprocess: shortest side resized to the input size (bicubic,
antialiased) and centre-cropped, or the whole image squashed to the square; 8-bit quantised;
normalised with the model's mean and std.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .clip import Encoder, openclip_entries

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class CLIPVisionConfig:
    """The size of a vision tower, its input size and normalisation."""

    width: int = 1024
    layers: int = 24
    heads: int = 16
    mlp_width: int = 4096
    activation: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    patch_size: int = 14
    image_size: int = 224
    projection_dim: int | None = 768  # None: no visual projection (SigLIP)
    siglip: bool = False
    llava_projection_dim: int | None = None  # LLaVA's projector width, when the file has one
    image_mean: tuple[float, float, float] = CLIP_MEAN
    image_std: tuple[float, float, float] = CLIP_STD

    @property
    def positions(self) -> int:
        """Patches, plus the class token of CLIP towers."""
        return (self.image_size // self.patch_size) ** 2 + (0 if self.siglip else 1)


VIT_L14 = CLIPVisionConfig()
VIT_H14 = CLIPVisionConfig(width=1280, layers=32, mlp_width=5120, activation="gelu", projection_dim=1024)
VIT_BIGG14 = CLIPVisionConfig(width=1664, layers=48, mlp_width=8192, activation="gelu", projection_dim=1280)
SIGLIP_SO400M = CLIPVisionConfig(width=1152, layers=27, mlp_width=4304, activation="gelu_tanh", layer_norm_eps=1e-6,
                                 image_size=384, projection_dim=None, siglip=True, image_mean=(0.5, 0.5, 0.5),
                                 image_std=(0.5, 0.5, 0.5))
PRESETS = {config.width: config for config in (VIT_L14, VIT_H14, VIT_BIGG14, SIGLIP_SO400M)}


@dataclass(frozen=True)
class VisionOutput:
    """ComfyUI's CLIP_VISION_OUTPUT fields: [B, T, width] twice, image_embeds, and LLaVA's projection or None."""

    last_hidden_state: Tensor  # after the last block (CLIP: before the post-LayerNorm)
    penultimate_hidden_states: Tensor  # after the second-to-last block
    image_embeds: Tensor  # CLIP: [B, projection_dim]; SigLIP: [B, T, width]
    mm_projected: Tensor | None


class VisionEmbeddings(nn.Module):
    """Patch embedding, the class token (CLIP) and learned positions."""

    def __init__(self, config: CLIPVisionConfig) -> None:
        super().__init__()
        self.class_embedding = None if config.siglip else nn.Parameter(torch.empty(config.width))
        self.patch_embedding = nn.Conv2d(3, config.width, config.patch_size, config.patch_size, bias=config.siglip)
        self.position_embedding = nn.Embedding(config.positions, config.width)

    def forward(self, pixels: Tensor) -> Tensor:
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)
        if self.class_embedding is not None:
            x = torch.cat([self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
        return x + self.position_embedding.weight.to(x.dtype)


class VisionTransformer(nn.Module):
    """Embeddings, pre-LayerNorm (CLIP), the encoder blocks and the post-LayerNorm: transformers' `vision_model`."""

    def __init__(self, config: CLIPVisionConfig) -> None:
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        # transformers' own spelling of the pre-LayerNorm.
        self.pre_layrnorm = nn.Identity() if config.siglip else nn.LayerNorm(config.width, eps=config.layer_norm_eps)
        self.encoder = Encoder(config)
        self.post_layernorm = nn.LayerNorm(config.width, eps=config.layer_norm_eps)


class LlavaProjector(nn.Module):
    """LLaVA's projector of the patch tokens into the language model: Linear, GELU, Linear."""

    def __init__(self, width: int, out_width: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(width, out_width)
        self.linear_2 = nn.Linear(out_width, out_width)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.gelu(self.linear_1(x)))


class CLIPVisionModel(nn.Module):
    """A vision tower with its visual projection (transformers' CLIPVisionModelWithProjection) and LLaVA projector."""

    def __init__(self, config: CLIPVisionConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_model = VisionTransformer(config)
        self.visual_projection = (nn.Linear(config.width, config.projection_dim, bias=False)
                                  if config.projection_dim is not None else nn.Identity())
        self.multi_modal_projector = (LlavaProjector(config.width, config.llava_projection_dim)
                                      if config.llava_projection_dim is not None else None)

    def forward(self, pixels: Tensor) -> VisionOutput:
        """Normalised pixels [B, 3, size, size] to ComfyUI's outputs (penultimate: after block -2)."""
        tower = self.vision_model
        x = tower.pre_layrnorm(tower.embeddings(pixels))
        blocks = tower.encoder.layers
        penultimate = x
        for i, block in enumerate(blocks):
            x = block(x, causal=False)
            if i == len(blocks) - 2:
                penultimate = x
        if self.config.siglip:
            x = tower.post_layernorm(x)
            pooled = x
        else:
            pooled = tower.post_layernorm(x[:, 0])
        # LLaVA projects the penultimate layer's patch tokens (without the class token).
        projected = None if self.multi_modal_projector is None else self.multi_modal_projector(penultimate[:, 1:])
        return VisionOutput(x, penultimate, self.visual_projection(pooled), projected)


def preprocess(image: Tensor, config: CLIPVisionConfig, crop: bool = True) -> Tensor:
    """ComfyUI's clip_preprocess of IMAGE [B, H, W, C] to the model's normalised input [B, 3, size, size]."""
    size = config.image_size
    pixels = image[..., :3].movedim(-1, 1)
    if pixels.shape[-2:] != (size, size):
        if crop:
            scale = size / min(pixels.shape[-2:])
            target = (round(scale * pixels.shape[-2]), round(scale * pixels.shape[-1]))
        else:
            target = (size, size)
        pixels = F.interpolate(pixels, size=target, mode="bicubic", antialias=True)
        top, left = (pixels.shape[-2] - size) // 2, (pixels.shape[-1] - size) // 2
        pixels = pixels[..., top:top + size, left:left + size]
    pixels = torch.clip(255.0 * pixels, 0, 255).round() / 255.0
    mean = torch.tensor(config.image_mean, device=pixels.device, dtype=pixels.dtype).view(3, 1, 1)
    std = torch.tensor(config.image_std, device=pixels.device, dtype=pixels.dtype).view(3, 1, 1)
    return (pixels - mean) / std


# ------------------------------------------------------------------------------------------------
# Reading stored towers

OPENCLIP_PREFIX = "visual."
_OPENCLIP_NAMES = {
    "class_embedding": "vision_model.embeddings.class_embedding",
    "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "ln_post.weight": "vision_model.post_layernorm.weight",
    "ln_post.bias": "vision_model.post_layernorm.bias",
}
_LAYER = re.compile(r"vision_model\.encoder\.layers\.(\d+)\.layer_norm1\.weight")


def is_openclip(keys: Mapping[str, Tensor]) -> bool:
    """Whether a stored vision tower is OpenCLIP's `visual.*` layout."""
    return f"{OPENCLIP_PREFIX}transformer.resblocks.0.attn.in_proj_weight" in keys


def canonical_entries(key: str, value: Tensor) -> list[tuple[str, Tensor]]:
    """One tensor of OpenCLIP's visual tower (key without `visual.`) as (name, tensor) pairs of our layout.

    The blocks are named as in OpenCLIP's text tower, so the text converter reads them; the
    projection, applied as `x @ proj`, becomes a Linear weight.
    """
    if key in _OPENCLIP_NAMES:
        return [(_OPENCLIP_NAMES[key], value)]
    if key == "proj":
        return [("visual_projection.weight", value.t())]
    if key.startswith("transformer.resblocks."):
        return [("vision_model." + name.removeprefix("text_model."), tensor)
                for name, tensor in openclip_entries(key, value)]
    raise ValueError(f"unexpected key in an OpenCLIP vision tower: visual.{key}")


def canonical_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A stored vision tower in our layout: OpenCLIP's converted; transformers' kept (its position_ids dropped)."""
    if is_openclip(state_dict):
        return dict(pair for key, value in state_dict.items() if key.startswith(OPENCLIP_PREFIX)
                    for pair in canonical_entries(key.removeprefix(OPENCLIP_PREFIX), value))
    return {key: value for key, value in state_dict.items() if not key.endswith("position_ids")}


def is_vision_tower(state_dict: Mapping[str, Tensor]) -> bool:
    """Whether a state dict in our layout holds a vision tower."""
    return "vision_model.encoder.layers.0.layer_norm1.weight" in state_dict


def config_from_shapes(state_dict: Mapping[str, Tensor], template: CLIPVisionConfig | None = None) -> CLIPVisionConfig:
    """The config of a tower in our layout: sizes from the shapes, the rest from `template` or the width's preset."""
    width = state_dict["vision_model.encoder.layers.0.layer_norm1.weight"].shape[0]
    template = template or PRESETS.get(width)
    if template is None:
        raise ValueError(f"a vision tower of width {width}, which is none of ViT-L/14, ViT-H/14, ViT-bigG/14 "
                         f"or SigLIP ({', '.join(map(str, PRESETS))})")
    siglip = "vision_model.embeddings.class_embedding" not in state_dict
    patch = state_dict["vision_model.embeddings.patch_embedding.weight"].shape[-1]
    patches = state_dict["vision_model.embeddings.position_embedding.weight"].shape[0] - (0 if siglip else 1)
    projection = state_dict.get("visual_projection.weight")
    llava = state_dict.get("multi_modal_projector.linear_1.weight")
    return replace(template, width=width, siglip=siglip, patch_size=patch, image_size=patch * math.isqrt(patches),
                   layers=1 + max(int(m[1]) for key in state_dict if (m := _LAYER.fullmatch(key))),
                   mlp_width=state_dict["vision_model.encoder.layers.0.mlp.fc1.weight"].shape[0],
                   projection_dim=None if projection is None else projection.shape[0],
                   llava_projection_dim=None if llava is None else llava.shape[0])
