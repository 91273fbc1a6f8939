"""ComfyUI's `comfy.sample`: the seeded initial noise and the two sampling entry points packs call."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import Tensor

import comfy.samplers
import comfy.utils
from sigmagraph.nodes.sampling.noise import initial_noise


def prepare_noise(latent_image: Tensor, seed: int, noise_inds: Sequence[int] | None = None) -> Tensor:
    """The initial noise of a seed (ComfyUI's numbers); with noise_inds, the draws of those batch indices."""
    indices = None if noise_inds is None else [int(i) for i in noise_inds]
    return initial_noise(latent_image.shape, seed, indices).to(latent_image.dtype)


def fix_empty_latent_channels(model: Any, latent_image: Tensor) -> Tensor:
    """An empty latent with as many channels as the model's latent format (a non-empty one is left as it is)."""
    latent_format = model.get_model_object("latent_format")
    if latent_format.latent_channels != latent_image.shape[1] and torch.count_nonzero(latent_image) == 0:
        latent_image = comfy.utils.repeat_to_batch_size(latent_image, latent_format.latent_channels, dim=1)
    if latent_format.latent_dimensions == 3 and latent_image.ndim == 4:
        latent_image = latent_image.unsqueeze(2)
    return latent_image


def sample(model: Any, noise: Tensor, steps: int, cfg: float, sampler_name: str, scheduler: str, positive: list,
           negative: list, latent_image: Tensor, denoise: float = 1.0, disable_noise: bool = False,
           start_step: int | None = None, last_step: int | None = None, force_full_denoise: bool = False,
           noise_mask: Tensor | None = None, sigmas: Tensor | None = None, callback: Callable | None = None,
           disable_pbar: bool = False, seed: int | None = None) -> Tensor:
    """KSampler's run on given noise: the schedule by name, steps start_step..last_step; the unscaled latent."""
    sampler = comfy.samplers.KSampler(model, steps=steps, device=model.load_device, sampler=sampler_name,
                                      scheduler=scheduler, denoise=denoise, model_options=model.model_options)
    return sampler.sample(noise, positive, negative, cfg=cfg, latent_image=latent_image, start_step=start_step,
                          last_step=last_step, force_full_denoise=force_full_denoise, denoise_mask=noise_mask,
                          sigmas=sigmas, callback=callback, disable_pbar=disable_pbar, seed=seed).cpu()


def sample_custom(model: Any, noise: Tensor, cfg: float, sampler: Any, sigmas: Tensor, positive: list, negative: list,
                  latent_image: Tensor, noise_mask: Tensor | None = None, callback: Callable | None = None,
                  disable_pbar: bool = False, seed: int | None = None) -> Tensor:
    """SamplerCustom's run on given noise with a SAMPLER and SIGMAS; the unscaled latent."""
    return comfy.samplers.sample(model, noise, positive, negative, cfg, model.load_device, sampler, sigmas,
                                 model_options=model.model_options, latent_image=latent_image,
                                 denoise_mask=noise_mask, callback=callback, disable_pbar=disable_pbar,
                                 seed=seed).cpu()
