"""One sampling run: noise the latent to the first sigma, run a sampler, undo the noise scaling.

This is the composition every sampling node shares (KSampler, KSamplerAdvanced, SamplerCustom),
as ComfyUI's KSAMPLER does: x = noise_scaling(sigma_0, noise, latent, max_denoise) where
max_denoise holds when sigma_0 is at (or above) the model's sigma_max; inpainting keeps the
unmasked region on the trajectory of the original latent at every model call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .broadcast import append_dims
from .model_sampling import ModelSampling
from .samplers.common import Callback, Denoiser, Sampler


class InpaintDenoiser:
    """Blends a denoiser with the original latent outside the mask (mask 1 = repaint).

    Before the call the kept region of x is replaced by the original latent noised to sigma with
    the run's own noise; after it the kept region of x0 is the original latent. CFG++ samplers
    see the same blend through `with_uncond`.
    """

    def __init__(self, denoiser: Denoiser, model_sampling: ModelSampling, latent: Tensor, noise: Tensor,
                 mask: Tensor):
        self.denoiser, self.model_sampling = denoiser, model_sampling
        self.latent, self.noise, self.mask = latent, noise, mask

    def _blend_input(self, x: Tensor, sigma: Tensor) -> Tensor:
        kept = self.model_sampling.noise_scaling(append_dims(sigma, x.ndim), self.noise, self.latent)
        return x * self.mask + kept * (1 - self.mask)

    def _blend_output(self, x0: Tensor) -> Tensor:
        return x0 * self.mask + self.latent * (1 - self.mask)

    def __call__(self, x: Tensor, sigma: Tensor, **extra: Any) -> Tensor:
        return self._blend_output(self.denoiser(self._blend_input(x, sigma), sigma, **extra))

    def with_uncond(self, x: Tensor, sigma: Tensor, **extra: Any) -> tuple[Tensor, Tensor]:
        inner = getattr(self.denoiser, "with_uncond", None)
        x = self._blend_input(x, sigma)
        guided, uncond = inner(x, sigma, **extra) if inner else (self.denoiser(x, sigma, **extra),) * 2
        return self._blend_output(guided), self._blend_output(uncond)


def latent_mask(mask: Tensor, latent: Tensor) -> Tensor:
    """A [B?, H, W] or [B, 1, H, W] mask resized (bilinear) to the latent and broadcast to its shape."""
    mask = mask.reshape(-1, 1, *mask.shape[-2:]).to(latent)
    mask = torch.nn.functional.interpolate(mask, size=latent.shape[-2:], mode="bilinear")
    mask = mask.expand(-1, latent.shape[1], -1, -1)
    return mask.repeat((latent.shape[0] + mask.shape[0] - 1) // mask.shape[0], 1, 1, 1)[: latent.shape[0]]


def run_sampler(denoiser: Denoiser, model_sampling: ModelSampling, sampler: Sampler, sigmas: Tensor, latent: Tensor,
                noise: Tensor, seed: int | None = None, noise_mask: Tensor | None = None,
                callback: Callback | None = None, **params: Any) -> Tensor:
    """Samples from `latent` (already in the model's scaled space) along `sigmas`; returns the new latent."""
    if len(sigmas) <= 1:
        return latent
    sigmas = sigmas.to(device=latent.device, dtype=torch.float32)
    max_denoise = model_sampling.is_max_denoise(sigmas[0])
    x = model_sampling.noise_scaling(sigmas[0], noise, latent, max_denoise)
    if noise_mask is not None:
        denoiser = InpaintDenoiser(denoiser, model_sampling, latent, noise, latent_mask(noise_mask, latent))
    # The model sampling goes to the sampler, never to the model: ancestral and SDE samplers take
    # their flow forms from it.
    extra_args = {"seed": seed, "model_sampling": model_sampling}
    out = sampler(denoiser, x, sigmas, extra_args=extra_args, callback=callback, disable=True, **params)
    return model_sampling.inverse_noise_scaling(sigmas[-1], out)
