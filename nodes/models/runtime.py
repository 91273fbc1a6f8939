"""The values behind the MODEL, CLIP and VAE sockets for Stable Diffusion models.

Each holds `ModuleHandle`s (manager.py): shared weights plus this value's own patches, readied on
the compute device when used. Values are immutable; CLIPSetLastLayer and LoRA return new ones
that share the weights, so a cached value is never changed under another branch of a workflow.

Conventions (as ComfyUI): CONDITIONING tensors and LATENTs live on the CPU in float32; a LATENT
holds the autoencoder's latent unscaled (the MODEL's latent format scales it for sampling);
networks compute in their weights' dtype and hand float32 back.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Protocol, TypeVar

import torch
from torch import Tensor

from ..diffusion_model import DiffusionModel
from ..sampling.control import ActiveControls
from ..sampling.guidance import Conditioning
from ..sampling.model_sampling import Prediction, discrete_model_sampling
from .checkpoint import CheckpointError
from .clip import encode as encode_windows
from .families import EncoderOutput, ModelFamily, TextEncoderSlot, TextJoin, concat_features
from .flux import Flux
from .flux import diffusers_maps as flux_diffusers_maps
from .lora import (LoraLayer, LoraPatch, lora_to_original, match_lora, text_encoder_aliases, transformer_aliases,
                   unet_aliases)
from .manager import ManagedModule, ModuleHandle
from .mmdit import MMDiT
from .mmdit import diffusers_maps as mmdit_diffusers_maps
from .t5_text import encode as encode_t5
from .tokenizer import TokenWindows
from .unet import UNetModel
from .vae import image_from_pixels, pixels_from_image

log = logging.getLogger(__name__)
H = TypeVar("H", bound=ModuleHandle)

Progress = Callable[[int, int], None]


class Tokenizer(Protocol):
    """A text encoder's tokenizer (CLIPTokenizer, T5Tokenizer): prompts to weighted windows."""

    def tokenize_with_weights(self, text: str) -> TokenWindows: ...


class DiffusionNetwork(ModuleHandle):
    """A MODEL's network `net(x, timestep, c_crossattn, **inputs)`: the module in its weights' dtype, float32 out.

    The module is a UNet, MMDiT or Flux transformer; each takes (x, timesteps, context) and its own
    keyword inputs (y, guidance), which are cast to the weights' dtype on the compute device.
    `module_options` are further keyword arguments of this handle's calls (an MMDiT's skip_blocks).
    """

    module_options: Mapping[str, Any] = {}

    def __call__(self, x: Tensor, timestep: Tensor, c_crossattn: Tensor | None = None,
                 control: ActiveControls | None = None, **inputs: Tensor) -> Tensor:
        if control is not None and not isinstance(self.managed.module, UNetModel):
            raise ValueError(f"a ControlNet steers the UNet of SD 1.x/2.x/XL; this model's network is "
                             f"{type(self.managed.module).__name__}, which takes no ControlNet residuals: remove "
                             f"the ControlNet apply node or load a UNet checkpoint")
        # ControlNet residuals first (sampling/control.py): running the ControlNet may move weights.
        residuals = None if control is None else control.residuals(x, timestep, c_crossattn, inputs.get("y"))
        network = self.use()
        device, dtype = self.device, self.dtype

        def cast(value: Tensor | None) -> Tensor | None:
            return None if value is None else value.to(device=device, dtype=dtype)

        inputs = {name: cast(value) for name, value in inputs.items()}
        if residuals is not None:
            inputs["control"] = {key: [cast(value) for value in values] for key, values in residuals.items()}
        return network(cast(x), timestep.to(device), cast(c_crossattn), **inputs, **self.module_options).float()

    def with_module_options(self, **options: Any) -> "DiffusionNetwork":
        """A copy of this handle whose calls pass `options` to the module (the same weights)."""
        handle = copy.copy(self)
        handle.module_options = {**self.module_options, **options}
        return handle

    def prepare(self) -> None:
        """Readies the weights (device, patches) before sampling."""
        self.use()


def diffusion_model(family: ModelFamily, network: DiffusionNetwork,
                    prediction: Prediction | None = None) -> DiffusionModel:
    """The MODEL of a family's network; `prediction` overrides a discrete family's (e.g. a v-prediction SD1 fine-tune)."""
    return DiffusionModel(network, family.model_sampling(prediction), family.latent_format, family.condition_inputs,
                          family.name, network.prepare)


class TextEncoder(ModuleHandle):
    """One text encoder of a CLIP: its weights (a handle), its slot in the family and its tokenizer."""

    def __init__(self, managed: ManagedModule, slot: TextEncoderSlot, tokenizer: Tokenizer):
        super().__init__(managed)
        self.slot = slot
        self.tokenizer = tokenizer

    def encode(self, windows: TokenWindows, layer: int | None) -> EncoderOutput:
        """(cond, pooled or None) of tokenized text, float32 on the CPU; None for no windows (an omitted prompt).

        `layer` (CLIPSetLastLayer's) replaces a CLIP's output layer; T5 always gives its last.
        """
        if not windows.ids:
            return None
        if self.slot.is_t5:
            return encode_t5(self.use(), windows).cpu(), None
        settings = self.slot.settings if layer is None else replace(self.slot.settings, layer=layer)
        cond, pooled = encode_windows(self.use(), windows, settings)
        return cond.cpu(), pooled.cpu()


@dataclass(frozen=True, eq=False)
class CLIP:
    """A CLIP: the text encoders of a family, whose outputs the family's `join` combines.

    `layer` is CLIPSetLastLayer's choice for every CLIP encoder (None: each encoder's own setting).
    """

    parts: tuple[TextEncoder, ...]
    family: str
    join: TextJoin = concat_features
    layer: int | None = None

    def tokenize(self, text: str) -> dict[str, TokenWindows]:
        """Each encoder's windows of a (weighted) prompt, by slot name."""
        return {part.slot.name: part.tokenizer.tokenize_with_weights(text) for part in self.parts}

    def encode_tokens(self, tokens: dict[str, TokenWindows]) -> tuple[Tensor, Tensor]:
        """(cond [1, tokens, width], pooled [1, …]) of each encoder's windows, joined as the family does; float32, CPU."""
        return self.join({part.slot.name: part.encode(tokens[part.slot.name], self.layer) for part in self.parts})

    def encode(self, text: str, **options: Any) -> Conditioning:
        """CLIPTextEncode: a prompt as CONDITIONING, with the pooled output and `options` in its dict."""
        cond, pooled = self.encode_tokens(self.tokenize(text))
        return [[cond, {"pooled_output": pooled, **options}]]

    def with_last_layer(self, layer: int) -> "CLIP":
        """CLIPSetLastLayer: every CLIP encoder's output taken after block `layer` (-1 the last)."""
        return replace(self, layer=layer)

    def part(self, name: str) -> TextEncoder:
        """The encoder of a slot ("clip_l", "t5xxl"…); an error naming the ones this CLIP has."""
        for part in self.parts:
            if part.slot.name == name:
                return part
        raise ValueError(f"this CLIP ({self.family}) has no {name} encoder; it has "
                         f"{', '.join(part.slot.name for part in self.parts) or 'none'}")


def padded_windows(windows: TokenWindows, count: int, tokenizer: Tokenizer) -> TokenWindows:
    """The windows followed by windows of the empty prompt up to `count` (how ComfyUI evens SDXL's L and G)."""
    empty = tokenizer.tokenize_with_weights("")
    extra = count - len(windows.ids)
    return TokenWindows(windows.ids + empty.ids * extra, windows.weights + empty.weights * extra, windows.pad_token)


@dataclass(frozen=True, eq=False)
class VAE:
    """A KL autoencoder between IMAGE [B, H, W, C] in 0..1 and unscaled LATENT samples [B, 4, H/8, W/8]."""

    handle: ModuleHandle

    @property
    def downscale(self) -> int:
        """Image pixels per latent pixel."""
        return self.handle.managed.module.config.downscale

    @torch.inference_mode()
    def encode(self, image: Tensor) -> Tensor:
        """Latent means of an image batch (RGB only, centre-cropped to a multiple of 8), one image at a time."""
        vae = self.handle.use()
        pixels = pixels_from_image(image[..., :3].float())
        return torch.cat([vae.encode(self._cast(item[None])).float().cpu() for item in pixels])

    @torch.inference_mode()
    def decode(self, latent: Tensor) -> Tensor:
        """The images of a latent batch, one at a time so memory stays that of one image."""
        vae = self.handle.use()
        return torch.cat([image_from_pixels(vae.decode(self._cast(item[None])).float()).cpu() for item in latent])

    @torch.inference_mode()
    def encode_tiled(self, image: Tensor, tile_size: int, overlap: int, progress: Progress | None = None) -> Tensor:
        """`encode` in overlapping tiles of `tile_size` pixels (bounded memory for large images)."""
        vae = self.handle.use()
        pixels = self._cast(pixels_from_image(image[..., :3].float()))
        return vae.encode_tiled(pixels, tile_size, overlap, progress).float().cpu()

    @torch.inference_mode()
    def decode_tiled(self, latent: Tensor, tile_size: int, overlap: int, progress: Progress | None = None) -> Tensor:
        """`decode` in overlapping tiles of `tile_size` pixels (bounded memory for large images)."""
        vae = self.handle.use()
        return image_from_pixels(vae.decode_tiled(self._cast(latent), tile_size, overlap, progress).float()).cpu()

    def _cast(self, tensor: Tensor) -> Tensor:
        return tensor.to(device=self.handle.device, dtype=self.handle.dtype)


# ----------------------------------------------------------------------------------------------
# LoRA


def network_layers(model: DiffusionModel, layers: Mapping[str, LoraLayer],
                   source: str) -> tuple[Mapping[str, LoraLayer], dict[str, tuple[str, ...]], dict[str, str]]:
    """A LoRA's layers as they target the MODEL's network (a UNet; an MMDiT or Flux, whose diffusers-layout
    layers are converted to the original layout), the file's layers each comes from (where not itself),
    and the layer names that can target the network's weights."""
    module = model.network.managed.module if isinstance(model.network, DiffusionNetwork) else None
    if isinstance(module, UNetModel):
        return layers, {}, unet_aliases(module)
    if isinstance(module, MMDiT):
        return *lora_to_original(layers, mmdit_diffusers_maps(module.config), source), transformer_aliases(module)
    if isinstance(module, Flux):
        return *lora_to_original(layers, flux_diffusers_maps(module.config), source), transformer_aliases(module)
    raise CheckpointError(f"{source}: this MODEL ({model.family}) has no network weights a LoRA can patch")


def apply_lora(layers: Mapping[str, LoraLayer], source: str, model: DiffusionModel | None = None,
               strength_model: float = 0.0, clip: CLIP | None = None,
               strength_clip: float = 0.0) -> tuple[DiffusionModel | None, CLIP | None]:
    """The MODEL and CLIP with a LoRA's layers at their strengths: new values sharing the weights.

    A value with strength 0 (or None) comes back as it is. A LoRA none of whose layers fits the
    given model or CLIP was made for another model: an error naming `source`. Layers that fit
    nothing here are logged.
    """
    matched: set[str] = set()

    def patched(handle: H, targets: Mapping[str, LoraLayer], origins: Mapping[str, tuple[str, ...]],
                aliases: dict[str, str], strength: float) -> H:
        matched.update(name for target in targets.keys() & aliases.keys() for name in origins.get(target, (target,)))
        if strength == 0:
            return handle
        adapter = match_lora(targets, aliases, handle.managed.module, source)
        return handle.with_patches(LoraPatch(adapter, strength)) if adapter.layers else handle

    if model is not None:
        network = patched(model.network, *network_layers(model, layers, source), strength_model)
        if network is not model.network:
            model = replace(model, network=network, prepare=network.prepare)
    if clip is not None:
        clip = replace(clip, parts=tuple(
            patched(part, layers, {}, text_encoder_aliases(part.managed.module, part.slot.lora_prefixes), strength_clip)
            for part in clip.parts))
    if not matched:
        raise CheckpointError(f"{source}: none of its {len(layers)} layers fits this model "
                              f"(e.g. {', '.join(list(layers)[:3])}); it was made for another model family")
    if len(matched) < len(layers):
        log.info("%s: %d of %d layers fit nothing here (e.g. %s)", source, len(layers) - len(matched), len(layers),
                 next(name for name in layers if name not in matched))
    return model, clip
