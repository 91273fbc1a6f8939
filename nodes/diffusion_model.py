"""What flows along MODEL links: a network with its parametrization, latent format and conditioning.

A `DiffusionModel` is immutable; nodes that change a model (ModelSamplingDiscrete, LoRA) return
a new one sharing the network, so a cached model is never altered for other branches.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from torch import Tensor

from .sampling.guidance import CfgHook, ConditionEncoder, ModelWrapper, crossattn_inputs
from .sampling.model_sampling import ModelSampling, NetworkDenoiser


@dataclass(frozen=True)
class LatentFormat:
    """A latent space: channel count, the VAE's shift and scale factor, and a linear latent -> RGB preview map."""

    channels: int = 4
    scale_factor: float = 1.0
    rgb_factors: tuple[tuple[float, ...], ...] | None = None  # [channels][3]
    rgb_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shift: float = 0.0  # subtracted before scaling (SD3's and Flux's autoencoders have non-centred latents)

    def process_in(self, latent: Tensor) -> Tensor:
        """Stored (unscaled) LATENT -> the model's space: (latent - shift) * scale."""
        return (latent - self.shift) * self.scale_factor

    def process_out(self, latent: Tensor) -> Tensor:
        """The model's space -> stored (unscaled) LATENT: latent / scale + shift."""
        return latent / self.scale_factor + self.shift

    def preview_rgb(self, latent: Tensor) -> Tensor:
        """A cheap [B, H, W, 3] image in 0..1 from a model-space latent (for live previews)."""
        if self.rgb_factors is not None:
            factors = torch.tensor(self.rgb_factors, dtype=latent.dtype, device=latent.device)
            rgb = torch.einsum("bchw,cr->bhwr", latent[:, : factors.shape[0]], factors)
            rgb = rgb + torch.tensor(self.rgb_bias, dtype=latent.dtype, device=latent.device)
            return ((rgb + 1) / 2).clamp(0, 1)
        channels = latent[:, :3] if latent.shape[1] >= 3 else latent[:, :1].expand(-1, 3, -1, -1)
        low = channels.amin(dim=(2, 3), keepdim=True)
        high = channels.amax(dim=(2, 3), keepdim=True)
        return ((channels - low) / (high - low).clamp_min(1e-6)).movedim(1, -1)


@dataclass(frozen=True, eq=False)
class DiffusionModel:
    """A MODEL: `network(x_in, timestep, **inputs)` plus how to turn it into a denoiser.

    `encode_condition` turns one CONDITIONING entry into the network's keyword inputs;
    `prepare` (optional) readies the network's weights before sampling (device placement);
    `cfg_function` and `post_cfg` are guidance hooks (CFGNorm...) and `model_wrapper` runs each
    batched model call, see guidance.GuidedDenoiser.
    """

    network: Callable[..., Tensor]
    model_sampling: ModelSampling
    latent_format: LatentFormat = field(default_factory=LatentFormat)
    encode_condition: ConditionEncoder = crossattn_inputs
    family: str = "generic"
    prepare: Callable[[], Any] | None = None
    cfg_function: CfgHook | None = None
    post_cfg: tuple[CfgHook, ...] = ()
    model_wrapper: ModelWrapper | None = None

    def denoiser(self) -> NetworkDenoiser:
        """The unguided denoiser `model(x, sigma, **inputs) -> x0` in the model's latent space."""
        if self.prepare is not None:
            self.prepare()
        return NetworkDenoiser(self.network, self.model_sampling)

    def with_model_sampling(self, model_sampling: ModelSampling) -> "DiffusionModel":
        """The same network under another parametrization (ModelSamplingDiscrete and friends)."""
        return replace(self, model_sampling=model_sampling)

    def with_cfg_function(self, hook: CfgHook) -> "DiffusionModel":
        """The same model with its CFG blend replaced (ComfyUI's set_model_sampler_cfg_function)."""
        return replace(self, cfg_function=hook)

    def with_post_cfg(self, hook: CfgHook) -> "DiffusionModel":
        """The same model with one more hook on the guided x0 (ComfyUI's set_model_sampler_post_cfg_function)."""
        return replace(self, post_cfg=self.post_cfg + (hook,))

    def with_model_wrapper(self, wrapper: ModelWrapper) -> "DiffusionModel":
        """The same model with its model calls run through `wrapper` (ComfyUI's set_model_unet_function_wrapper)."""
        return replace(self, model_wrapper=wrapper)

    @property
    def device(self) -> torch.device:
        return getattr(self.network, "device", torch.device("cpu"))
