"""ComfyUI's `comfy.samplers` over Sigmagraph's samplers, schedules and guidance.

KSampler.SAMPLERS / SCHEDULERS list the names Sigmagraph's KSampler offers; KSAMPLER, CFGGuider,
sampling_function and calc_cond_batch are sigmagraph.compat's facades (samplers.py, guiders.py);
the scheduler functions are Sigmagraph's schedules on a ComfyUI model_sampling object.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from sigmagraph.compat import guiders as _guiders
from sigmagraph.compat import samplers as _samplers
from sigmagraph.compat.guiders import CFGGuider, calc_cond_batch, sampling_function  # noqa: F401 - ComfyUI's names
from sigmagraph.compat.model_sampling import native as _native
from sigmagraph.compat.samplers import (KSAMPLER, KSAMPLER_NAMES, SAMPLER_NAMES, SCHEDULER_HANDLERS,  # noqa: F401
                                        SCHEDULER_NAMES, KSamplerX0Inpaint, Sampler, SchedulerHandler, ksampler)
from sigmagraph.nodes.sampling import schedules as _schedules
from sigmagraph.nodes.sampling.samplers import DISCARD_PENULTIMATE_SIGMA as _DISCARD_PENULTIMATE_SIGMA

from .k_diffusion import sampling as k_diffusion_sampling  # noqa: F401 - packs reach it from here


def simple_scheduler(model_sampling: Any, steps: int) -> Tensor:
    """Every (table size / steps)-th training sigma from the top."""
    return _schedules.simple_sigmas(_native(model_sampling), steps)


def ddim_scheduler(model_sampling: Any, steps: int) -> Tensor:
    """DDIM's uniform timesteps."""
    return _schedules.ddim_uniform_sigmas(_native(model_sampling), steps)


def normal_scheduler(model_sampling: Any, steps: int, sgm: bool = False, floor: bool = False) -> Tensor:
    """Timesteps evenly spaced from sigma_max's to sigma_min's (sgm: the last one left out)."""
    schedule = _schedules.sgm_uniform_sigmas if sgm else _schedules.normal_sigmas
    return schedule(_native(model_sampling), steps)


def beta_scheduler(model_sampling: Any, steps: int, alpha: float = 0.6, beta: float = 0.6) -> Tensor:
    """Timesteps at Beta(alpha, beta) quantiles."""
    return _schedules.beta_sigmas(_native(model_sampling), steps, alpha, beta)


def linear_quadratic_schedule(model_sampling: Any, steps: int, threshold_noise: float = 0.025,
                              linear_steps: int | None = None) -> Tensor:
    """Mochi's linear-then-quadratic schedule."""
    return _schedules.linear_quadratic_sigmas(_native(model_sampling), steps, threshold_noise, linear_steps)


def kl_optimal_scheduler(n: int, sigma_min: float, sigma_max: float) -> Tensor:
    """Sigmas evenly spaced in arctan(sigma)."""
    return _schedules.kl_optimal_sigmas(n, float(sigma_min), float(sigma_max))


def calculate_sigmas(model_sampling: Any, scheduler_name: str, steps: int) -> Tensor:
    """The sigmas of a named schedule (a pack's own included) for a model_sampling object."""
    handler = SCHEDULER_HANDLERS.get(scheduler_name)
    if handler is None:
        raise ValueError(f"error invalid scheduler {scheduler_name}")
    return _samplers.handler_sigmas(handler, model_sampling, steps)


def sampler_object(name: str) -> KSAMPLER:
    """The KSAMPLER of a sampler name."""
    return ksampler(name)


def process_conds(model: Any, noise: Tensor, conds: dict[str, list[dict]], device: Any, latent_image: Any = None,
                  denoise_mask: Any = None, seed: int | None = None) -> dict[str, list]:
    """A guider's converted conditioning (convert_cond's) resolved for the latent of `noise`, as CFGGuider.conds."""
    return _guiders.resolved(conds, model.source, noise.shape)


def sample(model: Any, noise: Tensor, positive: list, negative: list, cfg: float, device: Any, sampler: Any,
           sigmas: Tensor, model_options: dict | None = None, latent_image: Tensor | None = None,
           denoise_mask: Tensor | None = None, callback: Callable | None = None, disable_pbar: bool = False,
           seed: int | None = None) -> Tensor:
    """Samples with CFG guidance; returns the unscaled latent."""
    guider = CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    return guider.sample(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)


class KSampler:
    """ComfyUI's KSampler object: a model, a sampler and scheduler by name, and the sigmas of a step count."""

    SCHEDULERS = SCHEDULER_NAMES
    SAMPLERS = SAMPLER_NAMES
    DISCARD_PENULTIMATE_SIGMA_SAMPLERS = set(_DISCARD_PENULTIMATE_SIGMA)

    def __init__(self, model: Any, steps: int, device: Any, sampler: str | None = None, scheduler: str | None = None,
                 denoise: float | None = None, model_options: dict | None = None):
        self.model, self.device = model, device
        self.scheduler = scheduler if scheduler in self.SCHEDULERS else self.SCHEDULERS[0]
        self.sampler = sampler if sampler in self.SAMPLERS else self.SAMPLERS[0]
        self.denoise, self.model_options = denoise, model_options or {}
        self.set_steps(steps, denoise)

    def calculate_sigmas(self, steps: int) -> Tensor:
        discard = self.sampler in self.DISCARD_PENULTIMATE_SIGMA_SAMPLERS
        sigmas = calculate_sigmas(self.model.get_model_object("model_sampling"), self.scheduler, steps + discard)
        return torch.cat([sigmas[:-2], sigmas[-1:]]) if discard else sigmas

    def set_steps(self, steps: int, denoise: float | None = None) -> None:
        """The sigmas of `steps` steps; with denoise < 1 the last steps of int(steps / denoise)."""
        self.steps = steps
        if denoise is None or denoise > 0.9999:
            self.sigmas = self.calculate_sigmas(steps)
        elif denoise <= 0.0:
            self.sigmas = torch.FloatTensor([])
        else:
            self.sigmas = self.calculate_sigmas(int(steps / denoise))[-(steps + 1):]

    def sample(self, noise: Tensor, positive: list, negative: list, cfg: float, latent_image: Tensor | None = None,
               start_step: int | None = None, last_step: int | None = None, force_full_denoise: bool = False,
               denoise_mask: Tensor | None = None, sigmas: Tensor | None = None, callback: Callable | None = None,
               disable_pbar: bool = False, seed: int | None = None) -> Tensor:
        """Samples over steps start_step..last_step of the sigmas (ending in 0 with force_full_denoise)."""
        sigmas = self.sigmas if sigmas is None else sigmas
        if last_step is not None and last_step < len(sigmas) - 1:
            sigmas = sigmas[:last_step + 1].clone()
            if force_full_denoise:
                sigmas[-1] = 0
        if start_step is not None:
            if start_step >= len(sigmas) - 1:
                return latent_image if latent_image is not None else torch.zeros_like(noise)
            sigmas = sigmas[start_step:]
        return sample(self.model, noise, positive, negative, cfg, self.device, sampler_object(self.sampler), sigmas,
                      self.model_options, latent_image, denoise_mask, callback, disable_pbar, seed)
