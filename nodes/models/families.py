"""Model families: one declaration each — what a checkpoint of the family holds and how it runs.

A family states what its files cannot: where each part lives in a single-file checkpoint, the
hyperparameters no shape reveals (attention heads, activations, how text-encoder output is
read), the prediction type, the latent format, and how a CONDITIONING entry becomes network
inputs. Sizes (widths, depths, block counts) are read from each file (detection.py), so pruned
or distilled variants with the family's layout load as well.

Detection tries FAMILIES in order. A family matches a file when the file's UNet has the
family's signature — `in_channels`, `context_dim`, linear or convolutional transformer
projections, `adm_in_channels` of its `unet` preset — and its `matches` test, if it has one,
passes. Adding a family is adding one declaration to FAMILIES, ahead of any family it refines
(as SD2.x-v comes before SD2.x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from ..diffusion_model import LatentFormat
from ..sampling.guidance import CROSSATTN, ConditionEncoder, crossattn_inputs
from ..sampling.model_sampling import Prediction
from .checkpoint import Checkpoint
from .clip import (SD1_CLIP_L, SD2_CLIP_H, SDXL_CLIP_G, SDXL_CLIP_L, VIT_BIGG14, VIT_H14, VIT_L14, CLIPTextConfig,
                   TextEncoderSettings)
from .tokenizer import END_TOKEN
from .unet import SD1_UNET, SD2_UNET, SDXL_REFINER_UNET, SDXL_UNET, UNetConfig, label_vector
from .vae import SD_VAE, VAEConfig

# Latent -> RGB preview factors fitted by the community for each latent space (as ComfyUI uses).
SD_LATENT = LatentFormat(channels=4, scale_factor=0.18215, rgb_factors=(
    (0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177)))
SDXL_LATENT = LatentFormat(channels=4, scale_factor=0.13025, rgb_factors=(
    (0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188)),
    rgb_bias=(0.1084, -0.0175, -0.0011))

# The demo model's latents are normalised by its training (tools/train_demo.py), hence scale 1; the
# preview map is the least-squares fit the training script prints and stores in the file.
DEMO_RGB_FACTORS = ((-0.5731, -0.5996, -0.0652), (-0.4705, -0.124, 0.541), (0.3996, -0.2288, 0.0549), (-0.3161, 0.1273, -0.1596))
DEMO_RGB_BIAS = (0.1708, -0.0678, -0.193)
DEMO_LATENT = LatentFormat(channels=4, scale_factor=1.0, rgb_factors=DEMO_RGB_FACTORS, rgb_bias=DEMO_RGB_BIAS)

FAMILY_MARK_KEY = "sigmagraph.family"  # safetensors metadata naming the family of files Sigmagraph writes
LATENT_DOWNSCALE = 8  # image pixels per latent pixel of the KL-f8 autoencoder all these families use


@dataclass(frozen=True)
class TextEncoderSlot:
    """One text encoder of a family: architecture, how its output is read, where files store it."""

    name: str  # "clip_l", "clip_h" or "clip_g"
    config: CLIPTextConfig  # the architecture; its sizes are replaced by the file's
    settings: TextEncoderSettings
    prefixes: tuple[str, ...]  # where single-file checkpoints store it (the first one present is used)
    lora_prefixes: tuple[str, ...]  # how LoRA files name its layers: kohya "lora_te1", diffusers "text_encoder"


@dataclass(frozen=True)
class ModelFamily:
    """Everything about a family that is not in its files' shapes."""

    name: str
    unet: UNetConfig  # signature and attention-head rule; sizes come from the file
    vae: VAEConfig
    text_encoders: tuple[TextEncoderSlot, ...]  # in the order their outputs are joined; the last gives pooled
    latent_format: LatentFormat
    prediction: Prediction = "eps"
    condition_inputs: ConditionEncoder = crossattn_inputs
    matches: Callable[[Checkpoint, str], bool] | None = None  # extra test of (file, UNet prefix)
    unet_prefix: str = "model.diffusion_model."
    vae_prefix: str = "first_stage_model."


# ----------------------------------------------------------------------------------------------
# Conditioning -> network inputs


def _pooled(options: dict[str, Any]) -> Tensor:
    pooled = options.get("pooled_output")
    if pooled is None:
        raise ValueError("SDXL conditioning needs the prompt's pooled_output: encode it with this model's CLIP "
                         "(CLIPTextEncode or CLIPTextEncodeSDXL)")
    return pooled


def _image_size(options: dict[str, Any]) -> tuple[float, float]:
    """(height, width) in pixels: the entry's own, else the size of the latent being sampled (as ComfyUI)."""
    latent = options.get("latent_size")
    default = (latent[0] * LATENT_DOWNSCALE, latent[1] * LATENT_DOWNSCALE) if latent else (768, 768)
    return options.get("height", default[0]), options.get("width", default[1])


def sdxl_inputs(cond: Tensor, options: dict[str, Any]) -> dict[str, Tensor]:
    """SDXL base: the tokens, and y = pooled text + (height, width, crop_h, crop_w, target_height, target_width)."""
    height, width = _image_size(options)
    numbers = (height, width, options.get("crop_h", 0), options.get("crop_w", 0),
               options.get("target_height", height), options.get("target_width", width))
    return {CROSSATTN: cond, "y": label_vector(_pooled(options), numbers)}


def refiner_inputs(cond: Tensor, options: dict[str, Any]) -> dict[str, Tensor]:
    """SDXL refiner: the tokens, and y = pooled text + (height, width, crop_h, crop_w, aesthetic score).

    The score defaults to 6 for positive prompts and 2.5 for negative ones, as in sgm and ComfyUI.
    """
    height, width = _image_size(options)
    score = options.get("aesthetic_score", 2.5 if options.get("prompt_type") == "negative" else 6.0)
    numbers = (height, width, options.get("crop_h", 0), options.get("crop_w", 0), score)
    return {CROSSATTN: cond, "y": label_vector(_pooled(options), numbers)}


# ----------------------------------------------------------------------------------------------
# Extra tests


def has_family_mark(name: str) -> Callable[[Checkpoint, str], bool]:
    """A `matches` test: the file's metadata names the family under FAMILY_MARK_KEY (files we write ourselves)."""
    def matches(checkpoint: Checkpoint, unet_prefix: str) -> bool:
        return checkpoint.metadata.get(FAMILY_MARK_KEY) == name
    return matches


def sd2_is_v_prediction(checkpoint: Checkpoint, unet_prefix: str) -> bool:
    """SD2.x 768-v against 512-base, told apart (as ComfyUI does) by a norm bias that v training spreads.

    A heuristic: the std of the last output transformer's first norm bias exceeds 0.09 in the
    768-v checkpoints. Override a wrong guess with ModelSamplingDiscrete or `prediction=`.
    """
    key = f"{unet_prefix}output_blocks.11.1.transformer_blocks.0.norm1.bias"
    return key in checkpoint and float(torch.std(checkpoint.read(key).float(), unbiased=False)) > 0.09


# ----------------------------------------------------------------------------------------------
# The families

_CLIP_L = TextEncoderSlot("clip_l", VIT_L14, SD1_CLIP_L, ("cond_stage_model.transformer.",),
                          ("lora_te", "lora_te1", "text_encoder"))
_CLIP_H = TextEncoderSlot("clip_h", VIT_H14, SD2_CLIP_H, ("cond_stage_model.model.", "conditioner.embedders.0.model."),
                          ("lora_te", "lora_te1", "text_encoder"))

SD1 = ModelFamily("SD1.x", SD1_UNET, SD_VAE, (_CLIP_L,), SD_LATENT)
SD2_V = ModelFamily("SD2.x-v", SD2_UNET, SD_VAE, (_CLIP_H,), SD_LATENT, prediction="v_prediction",
                    matches=sd2_is_v_prediction)
SD2 = ModelFamily("SD2.x", SD2_UNET, SD_VAE, (_CLIP_H,), SD_LATENT)
SDXL = ModelFamily(
    "SDXL", SDXL_UNET, SD_VAE,
    (TextEncoderSlot("clip_l", VIT_L14, SDXL_CLIP_L, ("conditioner.embedders.0.transformer.",),
                     ("lora_te1", "text_encoder")),
     TextEncoderSlot("clip_g", VIT_BIGG14, SDXL_CLIP_G, ("conditioner.embedders.1.model.",),
                     ("lora_te2", "text_encoder_2"))),
    SDXL_LATENT, condition_inputs=sdxl_inputs)
SDXL_REFINER = ModelFamily(
    "SDXL refiner", SDXL_REFINER_UNET, SD_VAE,
    (TextEncoderSlot("clip_g", VIT_BIGG14, SDXL_CLIP_G, ("conditioner.embedders.0.model.",),
                     ("lora_te", "text_encoder")),),
    SDXL_LATENT, condition_inputs=refiner_inputs)

# The demo model (nodes/demo): SD 1.x's three architectures at toy scale, trained from scratch by
# tools/train_demo.py for 64x64 pictures (8x8 latents). The sizes keep training within about
# 50 minutes on two CPU cores and the fp16 file near 12 MB, half of which is the text encoder's
# 49408-row token table (rows of tokens the training captions never use are zero).
DEMO_UNET = UNetConfig(model_channels=64, channel_mult=(1, 1), num_res_blocks=1, transformer_depth=(1, 1),
                       transformer_depth_middle=1, context_dim=64, num_head_channels=32,
                       use_linear_in_transformer=True, norm_groups=8)
DEMO_VAE = VAEConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1, norm_groups=8)
# One 64-wide head per layer: the head width of every CLIP text tower, so the loader's rule fits.
DEMO_TEXT_ENCODER = CLIPTextConfig(width=64, layers=3, heads=1, mlp_width=256, activation="gelu")
# Read as SD 1.x reads CLIP-L: padded with EOS, the last layer after the final layer norm.
DEMO_TEXT_SETTINGS = TextEncoderSettings(pad_token=END_TOKEN, layer=None, norm_hidden=True)
DEMO = ModelFamily("demo", DEMO_UNET, DEMO_VAE,
                   (TextEncoderSlot("clip_l", DEMO_TEXT_ENCODER, DEMO_TEXT_SETTINGS, ("cond_stage_model.transformer.",),
                                    ("lora_te", "lora_te1", "text_encoder")),),
                   DEMO_LATENT, prediction="v_prediction", matches=has_family_mark("demo"))

FAMILIES: tuple[ModelFamily, ...] = (DEMO, SD1, SD2_V, SD2, SDXL, SDXL_REFINER)
