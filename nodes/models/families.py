"""Model families: one declaration each — what a checkpoint of the family holds and how it runs.

A family states what its files cannot: where each part lives in a single-file checkpoint, the
hyperparameters no shape reveals (attention heads, activations, how text-encoder output is
read and joined), the parametrization, the latent format, and how a CONDITIONING entry becomes
network inputs. Sizes (widths, depths, block counts) are read from each file (detection.py), so
pruned or distilled variants with the family's layout load as well.

A family's `network` is the config of its diffusion network: a UNetConfig (SD 1.x/2.x/XL), an
MMDiTConfig (SD3, 3.5) or a FluxConfig (Flux.1). Detection finds which of the three a file holds
from its keys, reads its sizes, and tries FAMILIES of that architecture in order: a family
matches when the fields of its network config that form the architecture's signature (named in
detection.ARCHITECTURES: for a UNet `in_channels`, `context_dim`, linear or convolutional
transformer projections, `adm_in_channels`; for Flux whether it embeds the guidance scale) equal
the file's and its `matches` test, if it has one, passes. Adding a family is adding one declaration to
FAMILIES, ahead of any family it refines (as SD2.x-v comes before SD2.x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..diffusion_model import LatentFormat
from ..sampling.guidance import CROSSATTN, ConditionEncoder, crossattn_inputs
from ..sampling.model_sampling import ModelSampling, Prediction, discrete_model_sampling, flow_model_sampling
from .checkpoint import Checkpoint
from .clip import (SD1_CLIP_L, SD2_CLIP_H, SDXL_CLIP_G, SDXL_CLIP_L, VIT_BIGG14, VIT_H14, VIT_L14, CLIPTextConfig,
                   TextEncoderSettings)
from .flux import FLUX_DEV, FLUX_SCHNELL, FluxConfig, reference_tokens
from .mmdit import SD3_MEDIUM, MMDiTConfig
from .t5 import T5_XXL, T5Config
from .t5_text import T5Settings
from .tokenizer import END_TOKEN
from .unet import SD1_UNET, SD2_UNET, SDXL_REFINER_UNET, SDXL_UNET, UNetConfig, label_vector
from .vae import SD3_VAE, SD_VAE, VAEConfig

NetworkConfig = Union[UNetConfig, MMDiTConfig, FluxConfig]
# One text encoder's output: (cond [1, T, width], pooled [1, D] or None for T5), or None when it was given no tokens.
EncoderOutput = Union[tuple[Tensor, Union[Tensor, None]], None]
TextJoin = Callable[[Mapping[str, EncoderOutput]], tuple[Tensor, Tensor]]

# Latent -> RGB preview factors fitted by the community for each latent space (as ComfyUI uses).
SD_LATENT = LatentFormat(channels=4, scale_factor=0.18215, rgb_factors=(
    (0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721), (-0.2120, -0.2616, -0.7177)))
SDXL_LATENT = LatentFormat(channels=4, scale_factor=0.13025, rgb_factors=(
    (0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188)),
    rgb_bias=(0.1084, -0.0175, -0.0011))
# SD3's and Flux's 16-channel autoencoders: latents shifted, then scaled (Stability's and BFL's factors).
SD3_LATENT = LatentFormat(channels=16, scale_factor=1.5305, shift=0.0609, rgb_factors=(
    (-0.0645, 0.0177, 0.1052), (0.0028, 0.0312, 0.0650), (0.1848, 0.0762, 0.0360), (0.0944, 0.0360, 0.0889),
    (0.0897, 0.0506, -0.0364), (-0.0020, 0.1203, 0.0284), (0.0855, 0.0118, 0.0283), (-0.0539, 0.0658, 0.1047),
    (-0.0057, 0.0116, 0.0700), (-0.0412, 0.0281, -0.0039), (0.1106, 0.1171, 0.1220), (-0.0248, 0.0682, -0.0481),
    (0.0815, 0.0846, 0.1207), (-0.0120, -0.0055, -0.0867), (-0.0749, -0.0634, -0.0456), (-0.1418, -0.1457, -0.1259)))
FLUX_LATENT = LatentFormat(channels=16, scale_factor=0.3611, shift=0.1159, rgb_factors=(
    (-0.0404, 0.0159, 0.0609), (0.0043, 0.0298, 0.0850), (0.0328, -0.0749, -0.0503), (-0.0245, 0.0085, 0.0549),
    (0.0966, 0.0894, 0.0530), (0.0035, 0.0399, 0.0123), (0.0583, 0.1184, 0.1262), (-0.0191, -0.0206, -0.0306),
    (-0.0324, 0.0055, 0.1001), (0.0955, 0.0659, -0.0545), (-0.0504, 0.0231, -0.0013), (0.0500, -0.0008, -0.0088),
    (0.0982, 0.0941, 0.0976), (-0.1233, -0.0280, -0.0897), (-0.0005, -0.0530, -0.0020), (-0.1273, -0.0932, -0.0680)))

# The demo model's latents are normalised by its training (tools/train_demo.py), hence scale 1; the
# preview map is the least-squares fit the training script prints and stores in the file.
DEMO_RGB_FACTORS = ((-0.5731, -0.5996, -0.0652), (-0.4705, -0.124, 0.541), (0.3996, -0.2288, 0.0549), (-0.3161, 0.1273, -0.1596))
DEMO_RGB_BIAS = (0.1708, -0.0678, -0.193)
DEMO_LATENT = LatentFormat(channels=4, scale_factor=1.0, rgb_factors=DEMO_RGB_FACTORS, rgb_bias=DEMO_RGB_BIAS)

# The flow demo model's latents, normalised the same way (tools/train_demo.py --family flow).
DEMO_FLOW_RGB_FACTORS = (
    (0.1044, -0.2242, -0.0603), (-0.195, -0.3827, -0.5585), (0.0059, 0.7932, -0.8658), (-0.2903, 0.3754, -0.1335),
    (0.5564, -0.2313, 0.2136), (-0.5336, -0.0713, 0.4345), (-0.0273, -0.1204, 0.502), (-0.0697, 0.2109, -0.3974),
    (-0.129, 0.2691, 0.1408), (0.1588, -0.0131, -0.1478), (1.4176, 0.0388, 0.1452), (0.7481, 0.2245, -0.0584),
    (0.282, 0.2301, 0.0532), (0.5531, -0.2086, 0.0594), (-0.3229, 0.3439, -0.2838), (0.2869, -0.3303, 0.1136),
)
DEMO_FLOW_RGB_BIAS = (0.1708, -0.0678, -0.193)  # the data's mean colour, as the SD demo's: latents have zero mean
DEMO_FLOW_LATENT = LatentFormat(channels=16, scale_factor=1.0, rgb_factors=DEMO_FLOW_RGB_FACTORS,
                                rgb_bias=DEMO_FLOW_RGB_BIAS)

FAMILY_MARK_KEY = "sigmagraph.family"  # safetensors metadata naming the family of files Sigmagraph writes
LATENT_DOWNSCALE = 8  # image pixels per latent pixel of the KL-f8 autoencoder all these families use
DEFAULT_FLUX_GUIDANCE = 3.5  # the distilled guidance scale of Flux dev when the conditioning sets none (ComfyUI's)


@dataclass(frozen=True)
class TextEncoderSlot:
    """One text encoder of a family: architecture, how its output is read, where files store it."""

    name: str  # "clip_l", "clip_h", "clip_g" or "t5xxl"
    config: CLIPTextConfig | T5Config  # the architecture; its sizes are replaced by the file's
    settings: TextEncoderSettings | T5Settings
    prefixes: tuple[str, ...]  # where single-file checkpoints store it (the first one present is used)
    lora_prefixes: tuple[str, ...] = ()  # how LoRA files name its layers: kohya "lora_te1", diffusers "text_encoder"
    optional: bool = False  # a CLIP may lack it (SD3 without T5): the family's join fills in for it

    @property
    def is_t5(self) -> bool:
        """Whether this is a T5 encoder (else a CLIP text transformer)."""
        return isinstance(self.config, T5Config)


@dataclass(frozen=True)
class FlowSampling:
    """A rectified-flow family's noise levels: sigma(t) = shift t / (1 + (shift - 1) t), timestep = sigma x multiplier."""

    shift: float
    multiplier: float
    table_size: int = 1000


def concat_features(outputs: Mapping[str, EncoderOutput]) -> tuple[Tensor, Tensor]:
    """SD's join: the encoders' tokens side by side (cut to the shortest, as ComfyUI's SDXL), the last one's pooled."""
    parts = list(outputs.values())
    length = min(cond.shape[1] for cond, _ in parts)
    return torch.cat([cond[:, :length] for cond, _ in parts], dim=-1), parts[-1][1]


@dataclass(frozen=True)
class ModelFamily:
    """Everything about a family that is not in its files' shapes."""

    name: str
    network: NetworkConfig  # signature and what shapes cannot tell (heads, activations); sizes come from the file
    vae: VAEConfig
    text_encoders: tuple[TextEncoderSlot, ...]  # in the order their outputs are joined
    latent_format: LatentFormat
    prediction: Prediction = "eps"
    condition_inputs: ConditionEncoder = crossattn_inputs
    matches: Callable[[Checkpoint, str], bool] | None = None  # extra test of (file, network prefix)
    network_prefix: str = "model.diffusion_model."
    vae_prefix: str = "first_stage_model."
    flow: FlowSampling | None = None  # the noise levels of a rectified-flow family (prediction "flow")
    join_text: TextJoin = concat_features  # how the encoders' outputs become (cond, pooled)

    def model_sampling(self, prediction: Prediction | None = None) -> ModelSampling:
        """The family's parametrization; `prediction` overrides a discrete family's (a v-prediction SD1 fine-tune)."""
        if self.flow is not None:
            return flow_model_sampling(self.flow.shift, self.flow.multiplier, self.flow.table_size)
        return discrete_model_sampling(prediction or self.prediction)


# ----------------------------------------------------------------------------------------------
# Conditioning -> network inputs


def _pooled(options: dict[str, Any]) -> Tensor:
    pooled = options.get("pooled_output")
    if pooled is None:
        raise ValueError("this model's conditioning needs the prompt's pooled_output: encode it with this model's "
                         "CLIP (CLIPTextEncode or the family's own text-encode node)")
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


def sd3_inputs(cond: Tensor, options: dict[str, Any]) -> dict[str, Tensor]:
    """SD3: the tokens, and y = the pooled CLIP-L and bigG outputs (zeros for a missing encoder)."""
    return {CROSSATTN: cond, "y": _pooled(options)}


def flux_schnell_inputs(cond: Tensor, options: dict[str, Any]) -> dict[str, Tensor]:
    """Flux schnell: the T5 tokens, y = the pooled CLIP-L output, and any Kontext reference latents.

    References (ReferenceLatent's `reference_latents`, unscaled LATENT samples) enter the model's
    latent space and become image tokens placed by `reference_latents_method` (default "offset").
    """
    inputs = {CROSSATTN: cond, "y": _pooled(options)}
    references = options.get("reference_latents")
    if references:
        tokens, ids = reference_tokens([FLUX_LATENT.process_in(latent) for latent in references],
                                       options.get("reference_latents_method", "offset"), options["latent_size"])
        inputs.update(ref_tokens=tokens, ref_ids=ids)
    return inputs


def flux_dev_inputs(cond: Tensor, options: dict[str, Any]) -> dict[str, Tensor]:
    """Flux dev: schnell's inputs and the distilled guidance scale (FluxGuidance's, else 3.5 as ComfyUI)."""
    guidance = torch.tensor([float(options.get("guidance", DEFAULT_FLUX_GUIDANCE))])
    return {**flux_schnell_inputs(cond, options), "guidance": guidance}


# ----------------------------------------------------------------------------------------------
# Joining text encoders' outputs (ComfyUI's SD3ClipModel and FluxClipModel)

SD3_CONTEXT_WIDTH = SD3_MEDIUM.context_dim  # CLIP tokens are zero-padded to T5-XXL's width
SD3_EMPTY_TOKENS = 77  # the conditioning of a CLIP without any encoder's tokens: zeros of one window


def sd3_join(outputs: Mapping[str, EncoderOutput]) -> tuple[Tensor, Tensor]:
    """SD3's conditioning: [CLIP-L | bigG] tokens padded to T5's width, then T5's tokens; pooled = [L, G].

    A missing CLIP contributes zeros to the pooled vector (and its width of zeros to the tokens);
    without T5 the CLIP tokens stand alone; without any tokens the conditioning is zeros.
    """
    clip_l, clip_g, t5 = outputs.get("clip_l"), outputs.get("clip_g"), outputs.get("t5xxl")
    width = t5[0].shape[-1] if t5 is not None else SD3_CONTEXT_WIDTH
    pooled = torch.cat([torch.zeros(1, VIT_L14.width) if clip_l is None else clip_l[1],
                        torch.zeros(1, VIT_BIGG14.projection_dim) if clip_g is None else clip_g[1]], dim=-1)
    tokens = []
    if clip_l is not None or clip_g is not None:
        if clip_l is None:
            clip_tokens = F.pad(clip_g[0], (VIT_L14.width, 0))
        else:
            clip_tokens = clip_l[0] if clip_g is None else concat_features({"l": clip_l, "g": clip_g})[0]
        tokens.append(F.pad(clip_tokens, (0, width - clip_tokens.shape[-1])))
    if t5 is not None:
        tokens.append(t5[0])
    cond = torch.cat(tokens, dim=1) if tokens else torch.zeros(1, SD3_EMPTY_TOKENS, width)
    return cond, pooled


def flux_join(outputs: Mapping[str, EncoderOutput]) -> tuple[Tensor, Tensor]:
    """Flux's conditioning: T5's tokens, with CLIP-L's pooled output."""
    t5, clip_l = outputs.get("t5xxl"), outputs.get("clip_l")
    if t5 is None or clip_l is None:
        raise ValueError("Flux encodes a prompt with both CLIP-L and T5-XXL: give each encoder some text")
    return t5[0], clip_l[1]


# ----------------------------------------------------------------------------------------------
# Extra tests


def has_family_mark(name: str) -> Callable[[Checkpoint, str], bool]:
    """A `matches` test: the file's metadata names the family under FAMILY_MARK_KEY (files we write ourselves)."""
    def matches(checkpoint: Checkpoint, network_prefix: str) -> bool:
        return checkpoint.metadata.get(FAMILY_MARK_KEY) == name
    return matches


def sd2_is_v_prediction(checkpoint: Checkpoint, network_prefix: str) -> bool:
    """SD2.x 768-v against 512-base, told apart (as ComfyUI does) by a norm bias that v training spreads.

    A heuristic: the std of the last output transformer's first norm bias exceeds 0.09 in the
    768-v checkpoints. Override a wrong guess with ModelSamplingDiscrete or `prediction=`.
    """
    key = f"{network_prefix}output_blocks.11.1.transformer_blocks.0.norm1.bias"
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

# The flow demo model (nodes/demo): SD3's MMDiT and 16-channel KL-f8 latents at toy scale, trained
# from scratch by rectified flow (tools/train_demo.py --family flow) for 64x64 pictures, so
# EmptySD3LatentImage and the other SD3 nodes apply unchanged. One 64-wide head per 64 of width, as
# Stability's MMDiTs; patch size 1 on the 8x8 latent (64 image tokens); 16 latent channels instead
# of the SD demo's 4 are what keep the shapes' corners. The text encoder is the SD demo's
# architecture, its prompt padded only to 24 tokens (the captions need at most 16), which halves
# the joint attention's tokens against a 77-token window.
DEMO_FLOW_MMDIT = MMDiTConfig(depth=4, hidden_size=128, num_heads=2, patch_size=1, context_dim=DEMO_TEXT_ENCODER.width,
                              pooled_dim=DEMO_TEXT_ENCODER.width, pos_embed_max_size=16)
DEMO_FLOW_VAE = VAEConfig(ch=32, ch_mult=(1, 1, 2, 4), num_res_blocks=1, z_channels=16, embed_dim=16, norm_groups=8)
DEMO_FLOW_TEXT_SETTINGS = replace(DEMO_TEXT_SETTINGS, min_length=24)
DEMO_FLOW_SHIFT = 3.0  # SD3's shift: of the shifts 1-4 tried on seeds the tests do not use, it kept the most shapes

# Stability's single files keep the text encoders under text_encoders.<name>.transformer. (transformers
# layouts) and the autoencoder under first_stage_model.; BFL's hold the transformer alone, and the
# files ComfyUI saves put Flux's autoencoder under vae.
_TEXT_ENCODERS = "text_encoders.{}.transformer."
_SD3_CLIP_L = replace(SDXL_CLIP_L, projected_pooled=False)  # the penultimate layer raw, the pooled state unprojected
_FLUX_CLIP_L = replace(SD1_CLIP_L, projected_pooled=False)
SD3 = ModelFamily(
    "SD3", SD3_MEDIUM, SD3_VAE,
    (TextEncoderSlot("clip_l", VIT_L14, _SD3_CLIP_L, (_TEXT_ENCODERS.format("clip_l"),), optional=True),
     TextEncoderSlot("clip_g", VIT_BIGG14, SDXL_CLIP_G, (_TEXT_ENCODERS.format("clip_g"),), optional=True),
     TextEncoderSlot("t5xxl", T5_XXL, T5Settings(min_length=77), (_TEXT_ENCODERS.format("t5xxl"),), optional=True)),
    SD3_LATENT, prediction="flow", condition_inputs=sd3_inputs, flow=FlowSampling(shift=3.0, multiplier=1000.0),
    join_text=sd3_join)
_FLUX_TEXT_ENCODERS = (
    TextEncoderSlot("clip_l", VIT_L14, _FLUX_CLIP_L, (_TEXT_ENCODERS.format("clip_l"),)),
    TextEncoderSlot("t5xxl", T5_XXL, T5Settings(min_length=256), (_TEXT_ENCODERS.format("t5xxl"),)))
# Flux dev's levels are ComfyUI's ModelSamplingFlux default: mu = 1.15 (shift e^mu), 10000 levels, t unscaled.
FLUX_DEV_FAMILY = ModelFamily(
    "Flux.1-dev", FLUX_DEV, SD3_VAE, _FLUX_TEXT_ENCODERS, FLUX_LATENT, prediction="flow",
    condition_inputs=flux_dev_inputs, vae_prefix="vae.", flow=FlowSampling(math.exp(1.15), 1.0, 10000),
    join_text=flux_join)
FLUX_SCHNELL_FAMILY = ModelFamily(
    "Flux.1-schnell", FLUX_SCHNELL, SD3_VAE, _FLUX_TEXT_ENCODERS, FLUX_LATENT, prediction="flow",
    condition_inputs=flux_schnell_inputs, vae_prefix="vae.", flow=FlowSampling(1.0, 1.0), join_text=flux_join)

DEMO_FLOW = ModelFamily(
    "demo-flow", DEMO_FLOW_MMDIT, DEMO_FLOW_VAE,
    (TextEncoderSlot("clip_l", DEMO_TEXT_ENCODER, DEMO_FLOW_TEXT_SETTINGS, (_TEXT_ENCODERS.format("clip_l"),)),),
    DEMO_FLOW_LATENT, prediction="flow", condition_inputs=sd3_inputs, matches=has_family_mark("demo-flow"),
    flow=FlowSampling(shift=DEMO_FLOW_SHIFT, multiplier=1000.0))

FAMILIES: tuple[ModelFamily, ...] = (DEMO, DEMO_FLOW, SD1, SD2_V, SD2, SDXL, SDXL_REFINER, SD3, FLUX_DEV_FAMILY,
                                     FLUX_SCHNELL_FAMILY)
