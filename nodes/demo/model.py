"""The demo model: its architecture sizes, its checkpoint file, and text-to-image with our samplers.

The demo model is three of the architectures Stable Diffusion 1.x uses, at toy scale: a KL-f8
autoencoder (64x64 images <-> 8x8x4 latents), a CLIP text transformer over the real BPE tokenizer,
and an LDM UNet with cross-attention to the text, predicting v on SD's discrete schedule. It is
trained by `tools/train_demo.py` on the scenes of `scenes.py`.

The checkpoint is one safetensors file in the original single-file layout —
`model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.text_model.*` —
so the loader reads it like any SD checkpoint. Its metadata holds what shapes cannot tell, as
JSON under `sigmagraph.demo` (see `DemoSettings`), and `sigmagraph.family` = "demo" marks it.

`load_demo` here reads the file straight into our modules, for the training script and the
tests; the graph loads it through the checkpoint loader as the "demo" family.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from ..sampling.guidance import guided_denoiser
from ..sampling.model_sampling import ModelSampling, Network, NetworkDenoiser, Prediction, discrete_model_sampling
from ..sampling.noise import initial_noise
from ..sampling.sample import run_sampler
from ..sampling.samplers import DISCARD_PENULTIMATE_SIGMA, SAMPLERS
from ..sampling.schedules import scheduled_sigmas
from ..models.clip import CLIPTextConfig, CLIPTextModel, TextEncoderSettings, encode
from ..models.module_init import empty_module
from ..models.tokenizer import END_TOKEN, CLIPTokenizer
from ..models.unet import UNetConfig, UNetModel
from ..models.vae import AutoencoderKL, VAEConfig, image_from_pixels

DEMO_CHECKPOINT = Path(__file__).with_name("sigmagraph-demo.safetensors")
FAMILY = "demo"
FAMILY_KEY = "sigmagraph.family"
SETTINGS_KEY = "sigmagraph.demo"
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_ENCODER_PREFIX = "cond_stage_model.transformer."

# The sizes, chosen so that training fits in about half an hour on two CPU cores and the file in
# about 12 MB of fp16 (of which 6.3 MB is the text encoder's 49408-row token table, most of it zero).
DEMO_UNET = UNetConfig(model_channels=64, channel_mult=(1, 1), num_res_blocks=1, transformer_depth=(1, 1),
                       transformer_depth_middle=1, context_dim=64, num_head_channels=32,
                       use_linear_in_transformer=True)
DEMO_VAE = VAEConfig(ch=32, ch_mult=(1, 1, 2, 2), num_res_blocks=1)  # scale_factor: measured by training
# One 64-wide head per layer: the head width every CLIP text tower uses, so the loader's rule fits.
DEMO_TEXT_ENCODER = CLIPTextConfig(width=64, layers=3, heads=1, mlp_width=256, activation="gelu")
# As SD 1.x reads CLIP-L: padded with EOS, the last layer after the final layer norm.
DEMO_TEXT_SETTINGS = TextEncoderSettings(pad_token=END_TOKEN, layer=None, norm_hidden=True)
DEMO_PREDICTION: Prediction = "v_prediction"
IMAGE_SIZE = 64


@dataclass(frozen=True)
class DemoSettings:
    """What the demo checkpoint's metadata records beside its weights (JSON under SETTINGS_KEY)."""

    unet: UNetConfig = DEMO_UNET
    vae: VAEConfig = DEMO_VAE
    text_encoder: CLIPTextConfig = DEMO_TEXT_ENCODER
    text_encoder_settings: TextEncoderSettings = DEMO_TEXT_SETTINGS
    prediction: Prediction = DEMO_PREDICTION
    # Least-squares latent -> RGB preview map: rgb in [-1, 1] = model-space latent @ factors + bias.
    latent_rgb_factors: tuple[tuple[float, float, float], ...] = ()
    latent_rgb_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    training: dict[str, Any] = field(default_factory=dict)  # seed, steps, losses, wall time

    def to_json(self) -> str:
        """The settings as the JSON text stored in the file."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DemoSettings":
        """Settings read back from `to_json`'s text."""
        data = json.loads(text)

        def tuples(value: Any) -> Any:
            return tuple(tuples(v) for v in value) if isinstance(value, list) else value

        return cls(unet=UNetConfig(**{k: tuples(v) for k, v in data["unet"].items()}),
                   vae=VAEConfig(**{k: tuples(v) for k, v in data["vae"].items()}),
                   text_encoder=CLIPTextConfig(**data["text_encoder"]),
                   text_encoder_settings=TextEncoderSettings(**data["text_encoder_settings"]),
                   prediction=data["prediction"], latent_rgb_factors=tuples(data["latent_rgb_factors"]),
                   latent_rgb_bias=tuples(data["latent_rgb_bias"]), training=data["training"])


@dataclass(frozen=True, eq=False)
class DemoModel:
    """The three networks with their settings, in float32 on the CPU."""

    unet: UNetModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    settings: DemoSettings

    @property
    def model_sampling(self) -> ModelSampling:
        """SD's discrete schedule (1000 scaled-linear steps) with the model's prediction type."""
        return discrete_model_sampling(self.settings.prediction)


def state_dict_for_file(unet: nn.Module, vae: nn.Module, text_encoder: nn.Module) -> dict[str, Tensor]:
    """The three modules' weights under their original checkpoint prefixes, as contiguous fp16 tensors."""
    parts = ((UNET_PREFIX, unet), (VAE_PREFIX, vae), (TEXT_ENCODER_PREFIX, text_encoder))
    return {prefix + key: value.detach().to(torch.float16).contiguous()
            for prefix, module in parts for key, value in module.state_dict().items()}


def save_demo(path: Path, unet: nn.Module, vae: nn.Module, text_encoder: nn.Module, settings: DemoSettings) -> None:
    """Writes the single-file checkpoint: fp16 weights, the settings and the family mark as metadata."""
    save_file(state_dict_for_file(unet, vae, text_encoder), str(path),
              metadata={FAMILY_KEY: FAMILY, SETTINGS_KEY: settings.to_json()})


def load_demo(path: Path = DEMO_CHECKPOINT) -> DemoModel:
    """Reads a demo checkpoint into float32 CPU modules built from its metadata, in eval mode."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get(FAMILY_KEY) != FAMILY:
            raise ValueError(f"{path.name}: not a demo checkpoint (metadata {FAMILY_KEY} is "
                             f"{metadata.get(FAMILY_KEY)!r}, expected {FAMILY!r})")
        settings = DemoSettings.from_json(metadata[SETTINGS_KEY])
        modules = []
        for factory, config, prefix in ((UNetModel, settings.unet, UNET_PREFIX),
                                        (AutoencoderKL, settings.vae, VAE_PREFIX),
                                        (CLIPTextModel, settings.text_encoder, TEXT_ENCODER_PREFIX)):
            module = empty_module(factory, config)
            module.load_state_dict({key[len(prefix):]: handle.get_tensor(key) for key in handle.keys()
                                    if key.startswith(prefix)})
            modules.append(module.eval())
    return DemoModel(*modules, settings)


# ----------------------------------------------------------------------------------------------
# Text to image


def encode_prompt(text_encoder: CLIPTextModel, settings: TextEncoderSettings, prompt: str) -> Tensor:
    """A prompt's CONDITIONING tensor [1, 77·k, width], as CLIPTextEncode makes it."""
    windows = CLIPTokenizer(settings.pad_token).tokenize_with_weights(prompt)
    return encode(text_encoder, windows, settings)[0]


def unet_network(unet: UNetModel) -> Network:
    """The UNet as the samplers' network `net(x, timestep, c_crossattn=...)`."""
    def network(x: Tensor, timestep: Tensor, c_crossattn: Tensor) -> Tensor:
        return unet(x, timestep, c_crossattn)
    return network


@torch.no_grad()
def text_to_image(model: DemoModel, prompt: str, seed: int, steps: int = 20, cfg: float = 5.0,
                  sampler: str = "dpmpp_2m", scheduler: str = "karras", negative: str = "") -> np.ndarray:
    """One 64x64 picture as uint8 RGB [64, 64, 3]: KSampler's txt2img with this model, without the graph."""
    settings = model.settings
    model_sampling = model.model_sampling
    positive = [[encode_prompt(model.text_encoder, settings.text_encoder_settings, prompt), {}]]
    negative_cond = [[encode_prompt(model.text_encoder, settings.text_encoder_settings, negative), {}]]
    side = IMAGE_SIZE // settings.vae.downscale
    shape = (1, settings.unet.in_channels, side, side)
    denoiser = guided_denoiser(NetworkDenoiser(unet_network(model.unet), model_sampling), positive, negative_cond,
                               cfg, shape, model_sampling.percent_to_sigma)
    sigmas = scheduled_sigmas(model_sampling, scheduler, steps,
                              discard_penultimate=sampler in DISCARD_PENULTIMATE_SIGMA)
    latent = run_sampler(denoiser, model_sampling, SAMPLERS[sampler], sigmas, torch.zeros(shape),
                         initial_noise(shape, seed), seed=seed)
    pixels = model.vae.decode(latent / settings.vae.scale_factor)
    return image_to_uint8(image_from_pixels(pixels)[0])


def image_to_uint8(image: Tensor) -> np.ndarray:
    """An IMAGE [H, W, 3] in [0, 1] as 8-bit RGB, truncating as SaveImage does."""
    return np.clip(255.0 * image.numpy(), 0, 255).astype(np.uint8)


def image_grid(images: Sequence[np.ndarray], columns: int, scale: int = 1) -> np.ndarray:
    """Equal-sized uint8 images [H, W, 3] tiled row by row into one image, each enlarged `scale` times."""
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    grid = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)
