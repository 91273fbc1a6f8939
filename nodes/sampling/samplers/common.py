"""The vocabulary every sampler shares: types, derivative, ancestral split, churn, noise defaults.

A sampler is a function `sampler(model, x, sigmas, extra_args=None, callback=None, disable=None,
**params) -> Tensor` where `model(x, sigma, **extra_args)` returns the denoised estimate x0 and
`sigma` is a tensor of shape [batch]. Samplers hold no state between runs; they report every
step through `callback` (which is also where the engine raises its interrupt), and draw noise
only from explicit noise samplers (see `..noise`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Protocol

import torch
from torch import Tensor
from tqdm.auto import trange

from ..noise import BrownianTreeNoiseSampler, NoiseSampler, gaussian_noise_sampler

Denoiser = Callable[..., Tensor]
Callback = Callable[[dict[str, Any]], None]


class Sampler(Protocol):
    def __call__(self, model: Denoiser, x: Tensor, sigmas: Tensor, extra_args: dict | None = None,
                 callback: Callback | None = None, disable: bool | None = None, **params: Any) -> Tensor: ...


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Appends trailing singleton dimensions so a per-batch value broadcasts against x."""
    return v.reshape(*v.shape, *([1] * (ndim - v.ndim)))


def to_d(x: Tensor, sigma: Tensor, denoised: Tensor) -> Tensor:
    """The probability-flow ODE derivative dx/dsigma = (x - x0) / sigma (Karras et al. 2022, eq. 4)."""
    return (x - denoised) / append_dims(sigma, x.ndim)


def ancestral_step(sigma_from: Tensor, sigma_to: Tensor, eta: float = 1.0) -> tuple[Tensor, Tensor]:
    """Splits a step into a deterministic step to sigma_down plus fresh noise of std sigma_up."""
    if not eta or sigma_to == 0:
        return sigma_to, torch.zeros_like(sigma_to)
    sigma_up = torch.minimum(sigma_to, eta * (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5)
    sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
    return sigma_down, sigma_up


def steps(n: int, disable: bool | None) -> Iterable[int]:
    """The step indices, with a terminal progress bar unless disabled (the engine disables it)."""
    return trange(n, disable=disable)


def noise_sampler_or_default(noise_sampler: NoiseSampler | None, x: Tensor, extra_args: dict) -> NoiseSampler:
    """The given noise sampler, else independent Gaussian noise seeded from extra_args['seed']."""
    return noise_sampler or gaussian_noise_sampler(x, extra_args.get("seed"))


def brownian_or_default(noise_sampler: NoiseSampler | None, x: Tensor, sigmas: Tensor, extra_args: dict,
                        transform: Callable[[Tensor], Tensor] = lambda sigma: sigma) -> NoiseSampler:
    """The given noise sampler, else a Brownian tree over the schedule seeded from extra_args['seed']."""
    if noise_sampler is not None:
        return noise_sampler
    positive = sigmas[sigmas > 0]
    return BrownianTreeNoiseSampler(x, positive.min(), sigmas.max(), extra_args.get("seed"), transform)


def churn_sigma(sigma: Tensor, n_steps: int, s_churn: float, s_tmin: float, s_tmax: float) -> Tensor:
    """Karras et al. (2022) Algorithm 2 line 5: sigma_hat = sigma (1 + gamma) inside [s_tmin, s_tmax]."""
    gamma = min(s_churn / n_steps, math.sqrt(2.0) - 1.0) if s_tmin <= float(sigma) <= s_tmax else 0.0
    return sigma * (gamma + 1.0)


def predict_with_uncond(model: Denoiser, x: Tensor, sigma: Tensor, extra_args: dict) -> tuple[Tensor, Tensor]:
    """The guided x0 and the unconditional x0 (for CFG++); without a guider both are the same."""
    with_uncond = getattr(model, "with_uncond", None)
    if with_uncond is None:
        denoised = model(x, sigma, **extra_args)
        return denoised, denoised
    return with_uncond(x, sigma, **extra_args)
