"""ComfyUI's `comfy.k_diffusion.sampling`: k-diffusion's helpers and `sample_<name>` for Sigmagraph's samplers.

Each `sample_<name>` is Sigmagraph's sampler of that name, whose signature is ComfyUI's
(model, x, sigmas, extra_args, callback, disable, options...); dpm_fast and dpm_adaptive take
ComfyUI's (sigma_min, sigma_max[, n]) instead of sigmas. A pack that sets `sample_<name>` here
(with the name added to KSampler.SAMPLERS) adds a sampler Sigmagraph's nodes offer under that name.

Noise helpers draw from seeded CPU generators: `default_noise_sampler(x)` without a seed uses
seed 0, where ComfyUI would use torch's global generator.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm, trange  # noqa: F401 - packs use them from here, as from k-diffusion

from sigmagraph.compat import samplers as _samplers
from sigmagraph.nodes.sampling import noise as _noise
from sigmagraph.nodes.sampling import schedules as _schedules
from sigmagraph.nodes.sampling.samplers import COMFYUI_ORDER as _COMFYUI_ORDER
from sigmagraph.nodes.sampling.samplers import SAMPLERS as _SAMPLERS
from sigmagraph.nodes.sampling.samplers.common import ancestral_step as _ancestral_step
from sigmagraph.nodes.sampling.samplers.common import to_d  # noqa: F401 - k-diffusion's name

append_zero = _schedules.append_zero


def get_sigmas_karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0, device: Any = "cpu") -> Tensor:
    """Karras et al. (2022)'s schedule of n steps."""
    return _schedules.karras_sigmas(n, float(sigma_min), float(sigma_max), rho).to(device)


def get_sigmas_exponential(n: int, sigma_min: float, sigma_max: float, device: Any = "cpu") -> Tensor:
    """n sigmas evenly spaced in log-sigma."""
    return _schedules.exponential_sigmas(n, float(sigma_min), float(sigma_max)).to(device)


def get_sigmas_polyexponential(n: int, sigma_min: float, sigma_max: float, rho: float = 1.0,
                               device: Any = "cpu") -> Tensor:
    """n sigmas with log-sigma a polynomial of degree rho in the step."""
    return _schedules.polyexponential_sigmas(n, float(sigma_min), float(sigma_max), rho).to(device)


def get_sigmas_vp(n: int, beta_d: float = 19.9, beta_min: float = 0.1, eps_s: float = 1e-3,
                  device: Any = "cpu") -> Tensor:
    """The continuous VP-SDE's n noise levels."""
    return _schedules.vp_sigmas(n, beta_d, beta_min, eps_s).to(device)


def get_ancestral_step(sigma_from: Tensor | float, sigma_to: Tensor | float, eta: float = 1.0) -> tuple[Tensor, Tensor]:
    """(sigma_down, sigma_up) of an ancestral step from sigma_from to sigma_to."""
    return _ancestral_step(torch.as_tensor(sigma_from), torch.as_tensor(sigma_to), eta)


def default_noise_sampler(x: Tensor, seed: int | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    """Fresh Gaussian noise shaped like x at every call, from a CPU generator seeded with `seed` (0 when None)."""
    return _noise.gaussian_noise_sampler(x, seed)


class BrownianTreeNoiseSampler(_noise.BrownianTreeNoiseSampler):
    """Noise from seeded Brownian trees over [transform(sigma_min), transform(sigma_max)], always on the CPU."""

    def __init__(self, x: Tensor, sigma_min: Tensor | float, sigma_max: Tensor | float, seed: Any = None,
                 transform: Callable[[Tensor], Tensor] = lambda sigma: sigma, cpu: bool = False):
        super().__init__(x, sigma_min, sigma_max, seed, transform)


class BatchedBrownianTree:
    """Brownian increments W(t1) - W(t0) over [t0, t1], one tree per seed (a list of seeds: one per batch item).

    Sigmagraph's BrownianTreeNoiseSampler draws them; it returns them normalised, so they are scaled
    back by sqrt|t1 - t0| (equal to ComfyUI's up to rounding).
    """

    def __init__(self, x: Tensor, t0: Tensor | float, t1: Tensor | float, seed: Any = None, **kwargs: Any):
        self.sampler = _noise.BrownianTreeNoiseSampler(x, t0, t1, seed)

    def __call__(self, t0: Tensor, t1: Tensor) -> Tensor:
        return self.sampler(t0, t1) * (torch.as_tensor(t1) - torch.as_tensor(t0)).abs().sqrt()


def sample_dpm_fast(model: Callable, x: Tensor, sigma_min: float, sigma_max: float, n: int,
                    extra_args: dict | None = None, callback: Callable | None = None, disable: bool | None = None,
                    eta: float = 0.0, s_noise: float = 1.0, noise_sampler: Callable | None = None) -> Tensor:
    """DPM-Solver-fast with exactly n model calls from sigma_max to sigma_min."""
    # Sigmagraph's dpm_fast reads the range and the number of calls from its sigmas.
    sigmas = torch.linspace(float(sigma_max), float(sigma_min), n + 1, device=x.device)
    return _SAMPLERS["dpm_fast"](model, x, sigmas, extra_args, callback, disable, eta=eta, s_noise=s_noise,
                                 noise_sampler=noise_sampler)


def sample_dpm_adaptive(model: Callable, x: Tensor, sigma_min: float, sigma_max: float,
                        extra_args: dict | None = None, callback: Callable | None = None,
                        disable: bool | None = None, **options: Any) -> Tensor:
    """DPM-Solver-12/23 with adaptive steps from sigma_max to sigma_min (options as Sigmagraph's dpm_adaptive)."""
    sigmas = torch.tensor([float(sigma_max), float(sigma_min)], device=x.device)
    return _SAMPLERS["dpm_adaptive"](model, x, sigmas, extra_args, callback, disable, **options)


# ComfyUI's k-diffusion samplers (not its ddim and uni_pc, which live elsewhere); dpm_fast and dpm_adaptive above.
globals().update({f"sample_{name}": _samplers.with_model_frame(_SAMPLERS[name]) for name in _COMFYUI_ORDER
                  if name not in _samplers.NOT_K_DIFFUSION and name not in ("dpm_fast", "dpm_adaptive")})


class _SamplingModule(ModuleType):
    """This module: a `sample_<name>` a pack sets on it becomes Sigmagraph's sampler <name>."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name.startswith("sample_") and callable(value):
            _samplers.register_sampler(name[len("sample_"):], value)


sys.modules[__name__].__class__ = _SamplingModule
